/**
 * DELETE_TOPIC_IN_NAMESRV (216): an admin deletes a topic (after deleting it on the brokers).
 * With clusterName, only that cluster's queues go. SUCCESS whether or not the topic existed.
 */
import { RequestCode } from '../../protocol/index.js';
import { parseDeleteTopicHeader } from '../headers.js';
import { type NamesrvProcessor, refused, success } from './context.js';

export const deleteTopic: NamesrvProcessor = {
  code: RequestCode.DELETE_TOPIC_IN_NAMESRV,
  handle(ctx, request, channel) {
    const header = parseDeleteTopicHeader(request.extFields);
    if (!header.ok) return refused(request, header.error);
    const { topic, clusterName } = header.value;
    if (ctx.routes.deleteTopic(topic, clusterName)) {
      ctx.logger.info({ topic, cluster: clusterName, from: channel.remoteAddress }, 'topic deleted');
    }
    return success(request);
  },
};
