/**
 * QUERY_DATA_VERSION (322): a broker asks whether this name server holds its current topic
 * configs (body: its DataVersion JSON). Unchanged counts as a sign of life. The response header
 * says `changed`, and the body is the data version we hold, if we know the broker.
 */
import { RequestCode } from '../../protocol/index.js';
import { parseBrokerIdentityHeader } from '../headers.js';
import { decodeDataVersion, encodeDataVersion } from '../register-body.js';
import { type NamesrvProcessor, refused, success } from './context.js';

export const queryDataVersion: NamesrvProcessor = {
  code: RequestCode.QUERY_DATA_VERSION,
  handle(ctx, request) {
    const header = parseBrokerIdentityHeader(request.extFields);
    if (!header.ok) return refused(request, header.error);
    const dv = decodeDataVersion(request.body);
    if (!dv.ok) return refused(request, `Failed to decode DataVersion: ${dv.error}`);
    const addr = header.value.brokerAddr;
    const changed = ctx.routes.isBrokerTopicConfigChanged(addr, dv.value);
    if (!changed) ctx.routes.refreshBrokerLiveness(addr);
    const held = ctx.routes.queryBrokerDataVersion(addr);
    return success(request, { changed: String(changed) }, held && encodeDataVersion(held));
  },
};
