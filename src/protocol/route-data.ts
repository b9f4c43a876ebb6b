/**
 * What the name server answers: route data, cluster info and topic lists, as the JSON bodies that
 * RocketMQ 4.x clients (fastjson: TopicRouteData, ClusterInfo, TopicList) and ali-ons
 * (`JSON2.parse`, then `queueDatas.sort` / `brokerDatas.sort` by brokerName) read.
 *
 * We always write standard JSON — quoted keys, no nulls — which is what RocketMQ itself sends to
 * clients of 4.9.4 and later (`acceptStandardJsonOnly`); older fastjson readers accept it too.
 *
 * GET_ROUTEINFO_BY_TOPIC → TopicRouteData, lists sorted by brokerName (the order RocketMQ clients
 * sort them into before comparing routes):
 *
 *   {"queueDatas":[{"brokerName":"broker-a","readQueueNums":8,"writeQueueNums":8,"perm":6,
 *                   "topicSysFlag":0}],
 *    "brokerDatas":[{"cluster":"DefaultCluster","brokerName":"broker-a",
 *                    "brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}}],
 *    "filterServerTable":{}
 *    [,"orderTopicConf":"broker-a:8"]}
 *
 *   brokerAddrs maps brokerId (0 = master) to "ip:port". fastjson writes those keys unquoted
 *   ({0:"..."}); we quote them. `zoneName` appears in a BrokerData when the broker sent one.
 *
 * GET_BROKER_CLUSTER_INFO → ClusterInfo:
 *
 *   {"brokerAddrTable":{"broker-a":{BrokerData}},"clusterAddrTable":{"DefaultCluster":["broker-a"]}}
 *
 * GET_ALL_TOPIC_LIST_FROM_NAMESERVER → TopicList: {"topicList":["TopicA","TopicB"]}
 */

export interface QueueData {
  brokerName: string;
  readQueueNums: number;
  writeQueueNums: number;
  perm: number;
  topicSysFlag: number;
}

export interface BrokerData {
  cluster: string;
  brokerName: string;
  /** brokerId (decimal string; "0" = master) → "ip:port", ascending by id. */
  brokerAddrs: Record<string, string>;
  zoneName?: string;
}

export interface TopicRouteData {
  orderTopicConf?: string;
  queueDatas: QueueData[];
  brokerDatas: BrokerData[];
  /** broker address → its filter servers (a 4.x feature kept for the format; usually empty). */
  filterServerTable: Record<string, string[]>;
}

export interface ClusterInfo {
  brokerAddrTable: Record<string, BrokerData>;
  clusterAddrTable: Record<string, string[]>;
}

export interface TopicList {
  topicList: string[];
}

/** Encodes any of the bodies above. */
export function encodeJsonBody(value: TopicRouteData | ClusterInfo | TopicList): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** RocketMQ's order of QueueData and BrokerData: by brokerName, in UTF-16 code unit order. */
export function byBrokerName(a: { brokerName: string }, b: { brokerName: string }): number {
  return a.brokerName < b.brokerName ? -1 : a.brokerName > b.brokerName ? 1 : 0;
}
