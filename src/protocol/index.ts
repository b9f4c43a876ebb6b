/**
 * The remoting protocol codec: RocketMQ 4.x-compatible frames, headers and codes. Pure — bytes in,
 * commands out — with no sockets, files or clocks; the remoting layer drives it. This is the
 * module's only entry: import from here, not from the files beside it.
 */
export {
  BINARY_HEADER_FIXED_BYTES,
  decodeBinaryHeader,
  encodeBinaryHeader,
} from './binary-header.js';
export {
  LANGUAGE_NAMES,
  LanguageCode,
  type LanguageName,
  type LanguageNumber,
  languageFromName,
  languageFromNumber,
  RemotingFlag,
  RequestCode,
  type RequestCodeName,
  ResponseCode,
  type ResponseCodeName,
  RPC_ONEWAY_BIT,
  RPC_TYPE_BIT,
  requestCodeName,
  responseCodeName,
  SerializeType,
  type SerializeTypeCode,
  type SerializeTypeName,
} from './codes.js';
export { parseFastjson, quoteBareIntegerKeys } from './fastjson.js';
export {
  DEFAULT_MAX_FRAME_BYTES,
  decodeFrame,
  encodeCommand,
  encodeCommandToBuffer,
  FRAME_LENGTH_BYTES,
  FRAME_PREFIX_BYTES,
  FrameDecoder,
  type FrameDecoderOptions,
  MAX_HEADER_BYTES,
} from './frame-codec.js';
export { type Fields, HeaderError, int, optInt, optStr, str } from './header-fields.js';
export {
  type ConsumerData,
  encodeHeartbeatData,
  type HeartbeatData,
  HeartbeatFormatError,
  parseHeartbeatData,
  type SubscriptionData,
} from './heartbeat-data.js';
export { decodeJsonHeader, encodeJsonHeader, jsonHeaderText } from './json-header.js';
export {
  createRequest,
  createResponse,
  DEFAULT_LANGUAGE,
  DEFAULT_VERSION,
  isOneway,
  isResponse,
  nextOpaque,
  OpaqueCounter,
  type RemotingCommand,
  type RequestOptions,
  type ResponseOptions,
} from './remoting-command.js';
export {
  type BrokerData,
  byBrokerName,
  type ClusterInfo,
  encodeJsonBody,
  type QueueData,
  type TopicList,
  type TopicRouteData,
} from './route-data.js';
export {
  encodeSendHeader,
  encodeSendResponseHeader,
  type HeaderResult,
  parseSendHeader,
  type SendMessageRequestHeader,
  type SendMessageResponseHeader,
} from './send-headers.js';
