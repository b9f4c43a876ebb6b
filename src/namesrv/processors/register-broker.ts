/**
 * REGISTER_BROKER (103): a broker announces itself and its topics; sent to every name server
 * every 30 s. Header and body: headers.ts, register-body.ts. The response carries, for a slave,
 * its master's address and HA address; RocketMQ's body (the order-topic KV table) is omitted,
 * since we keep no KV config and brokers read an absent body as an empty table.
 */
import { RequestCode } from '../../protocol/index.js';
import { parseRegisterBrokerHeader } from '../headers.js';
import { bodyCrc32, decodeRegisterBrokerBody } from '../register-body.js';
import { type NamesrvProcessor, refused, success } from './context.js';

export const registerBroker: NamesrvProcessor = {
  code: RequestCode.REGISTER_BROKER,
  handle(ctx, request, channel) {
    const header = parseRegisterBrokerHeader(request.extFields);
    if (!header.ok) return refused(request, header.error);
    const h = header.value;
    if (h.bodyCrc32 !== 0 && bodyCrc32(request.body) !== h.bodyCrc32) {
      ctx.logger.warn({ from: channel.remoteAddress, broker: h.brokerAddr }, 'register body crc32 mismatch');
      return refused(request, 'crc32 not match');
    }
    const body = decodeRegisterBrokerBody(request.body, h.compressed);
    if (!body.ok) {
      ctx.logger.warn(
        { from: channel.remoteAddress, broker: h.brokerAddr, error: body.error },
        'bad register body',
      );
      return refused(request, `Failed to decode RegisterBrokerBody: ${body.error}`);
    }
    const result = ctx.routes.registerBroker({
      clusterName: h.clusterName,
      brokerAddr: h.brokerAddr,
      brokerName: h.brokerName,
      brokerId: h.brokerId,
      haServerAddr: h.haServerAddr,
      topicConfigs: body.value.topicConfigs,
      dataVersion: body.value.dataVersion,
      filterServerList: body.value.filterServerList,
      channel,
      ...(h.heartbeatTimeoutMillis !== undefined && { timeoutMs: h.heartbeatTimeoutMillis }),
      ...(h.zoneName !== undefined && { zoneName: h.zoneName }),
    });
    const ext: Record<string, string> = {};
    if (result.masterAddr !== undefined) ext.masterAddr = result.masterAddr;
    if (result.haServerAddr !== undefined) ext.haServerAddr = result.haServerAddr;
    return success(request, ext);
  },
};
