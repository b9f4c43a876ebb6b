/** Shared by the offset processors: header parsing with RocketMQ's answer to a bad header. */
import {
  createResponse,
  type Fields,
  HeaderError,
  type RemotingCommand,
  ResponseCode,
} from '../../protocol/index.js';

/** Parses a header, or returns the SYSTEM_ERROR response RocketMQ gives for one that does not decode. */
export function parseOr<T>(
  request: RemotingCommand,
  parse: (f: Fields) => T,
): { ok: true; header: T } | { ok: false; response: RemotingCommand } {
  try {
    return { ok: true, header: parse(request.extFields) };
  } catch (e) {
    if (e instanceof HeaderError) {
      return { ok: false, response: createResponse(request, ResponseCode.SYSTEM_ERROR, e.message) };
    }
    throw e;
  }
}

export function storeUnavailable(request: RemotingCommand): RemotingCommand {
  return createResponse(request, ResponseCode.SERVICE_NOT_AVAILABLE, 'the broker is starting or closing');
}
