/**
 * The name server's request and response headers, as the string maps (`extFields`) they travel
 * in. Field names and types are RocketMQ's (common/protocol/header/namesrv/*RequestHeader in 4.x,
 * remoting/protocol/header/namesrv in 5.x); Java writes a Long or boolean field with toString
 * ("0", "true") and leaves a null field out.
 *
 *   REGISTER_BROKER 103     brokerName, brokerAddr, clusterName, haServerAddr, brokerId  required
 *                           compressed ("true"/"false", default false),
 *                           bodyCrc32 (int, 0 = unchecked; else CRC-32 of the body & 0x7fffffff),
 *                           heartbeatTimeoutMillis (5.x, optional), enableActingMaster (5.x),
 *                           __ZONE_NAME (5.x, optional)
 *     response              haServerAddr, masterAddr — the master's, for a slave; else absent
 *   UNREGISTER_BROKER 104   brokerName, brokerAddr, clusterName, brokerId
 *   GET_ROUTEINFO_BY_TOPIC 105  topic; acceptStandardJsonOnly (we always send standard JSON)
 *   DELETE_TOPIC_IN_NAMESRV 216  topic; clusterName (optional: only that cluster's brokers)
 *   QUERY_DATA_VERSION 322  brokerName, brokerAddr, clusterName, brokerId
 *     response              changed ("true"/"false")
 *
 * A required field that is missing or unparsable is refused with RocketMQ's wording
 * ("the custom field <brokerName> is null"), answered as SYSTEM_ERROR by the processors.
 */
import { fail, ok, type Parsed } from './parsed.js';

/** The extFields key 5.x brokers put their zone in (RocketMQ's MixAll.ZONE_NAME). */
export const ZONE_NAME_FIELD = '__ZONE_NAME';

export interface RegisterBrokerRequestHeader {
  brokerName: string;
  brokerAddr: string;
  clusterName: string;
  haServerAddr: string;
  brokerId: number;
  compressed: boolean;
  bodyCrc32: number;
  heartbeatTimeoutMillis?: number;
  enableActingMaster?: boolean;
  zoneName?: string;
}

export interface BrokerIdentityHeader {
  brokerName: string;
  brokerAddr: string;
  clusterName: string;
  brokerId: number;
}

export type UnregisterBrokerRequestHeader = BrokerIdentityHeader;
export type QueryDataVersionRequestHeader = BrokerIdentityHeader;

export interface GetRouteInfoRequestHeader {
  topic: string;
}

export interface DeleteTopicRequestHeader {
  topic: string;
  clusterName?: string;
}

class HeaderError extends Error {}

type Ext = Record<string, string> | undefined;

function has(ext: Ext, name: string): boolean {
  return ext !== undefined && Object.hasOwn(ext, name);
}

function str(ext: Ext, name: string): string {
  if (!has(ext, name)) throw new HeaderError(`the custom field <${name}> is null`);
  return ext![name]!;
}

function optStr(ext: Ext, name: string): string | undefined {
  return has(ext, name) ? ext![name] : undefined;
}

/** Java's Long.parseLong / Integer.parseInt, limited to what a double holds exactly. */
function integer(ext: Ext, name: string, required: boolean): number | undefined {
  if (!has(ext, name)) {
    if (required) throw new HeaderError(`the custom field <${name}> is null`);
    return undefined;
  }
  const s = ext![name]!;
  const n = /^[+-]?\d{1,16}$/.test(s) ? Number(s) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw new HeaderError(`the custom field <${name}> is not an integer: ${s}`);
  return n;
}

/** Java's Boolean.parseBoolean: "true" in any case is true, anything else false. */
function bool(ext: Ext, name: string): boolean | undefined {
  return has(ext, name) ? ext![name]!.toLowerCase() === 'true' : undefined;
}

function brokerId(ext: Ext): number {
  const id = integer(ext, 'brokerId', true)!;
  if (id < 0) throw new HeaderError(`the custom field <brokerId> is negative: ${id}`);
  return id;
}

function read<T>(f: () => T): Parsed<T> {
  try {
    return ok(f());
  } catch (e) {
    if (e instanceof HeaderError) return fail(e.message);
    throw e;
  }
}

export function parseRegisterBrokerHeader(ext: Ext): Parsed<RegisterBrokerRequestHeader> {
  return read(() => {
    const h: RegisterBrokerRequestHeader = {
      brokerName: str(ext, 'brokerName'),
      brokerAddr: str(ext, 'brokerAddr'),
      clusterName: str(ext, 'clusterName'),
      haServerAddr: str(ext, 'haServerAddr'),
      brokerId: brokerId(ext),
      compressed: bool(ext, 'compressed') ?? false,
      bodyCrc32: integer(ext, 'bodyCrc32', false) ?? 0,
    };
    const timeout = integer(ext, 'heartbeatTimeoutMillis', false);
    if (timeout !== undefined) {
      if (timeout <= 0) throw new HeaderError(`the custom field <heartbeatTimeoutMillis> is not positive`);
      h.heartbeatTimeoutMillis = timeout;
    }
    const acting = bool(ext, 'enableActingMaster');
    if (acting !== undefined) h.enableActingMaster = acting;
    const zone = optStr(ext, ZONE_NAME_FIELD);
    if (zone !== undefined) h.zoneName = zone;
    return h;
  });
}

export function encodeRegisterBrokerHeader(h: RegisterBrokerRequestHeader): Record<string, string> {
  const ext: Record<string, string> = {
    brokerName: h.brokerName,
    brokerAddr: h.brokerAddr,
    clusterName: h.clusterName,
    haServerAddr: h.haServerAddr,
    brokerId: String(h.brokerId),
    compressed: String(h.compressed),
    bodyCrc32: String(h.bodyCrc32),
  };
  if (h.heartbeatTimeoutMillis !== undefined) ext.heartbeatTimeoutMillis = String(h.heartbeatTimeoutMillis);
  if (h.enableActingMaster !== undefined) ext.enableActingMaster = String(h.enableActingMaster);
  if (h.zoneName !== undefined) ext[ZONE_NAME_FIELD] = h.zoneName;
  return ext;
}

export function parseBrokerIdentityHeader(ext: Ext): Parsed<BrokerIdentityHeader> {
  return read(() => ({
    brokerName: str(ext, 'brokerName'),
    brokerAddr: str(ext, 'brokerAddr'),
    clusterName: str(ext, 'clusterName'),
    brokerId: brokerId(ext),
  }));
}

export function encodeBrokerIdentityHeader(h: BrokerIdentityHeader): Record<string, string> {
  return {
    brokerName: h.brokerName,
    brokerAddr: h.brokerAddr,
    clusterName: h.clusterName,
    brokerId: String(h.brokerId),
  };
}

export function parseGetRouteInfoHeader(ext: Ext): Parsed<GetRouteInfoRequestHeader> {
  return read(() => ({ topic: str(ext, 'topic') }));
}

export function parseDeleteTopicHeader(ext: Ext): Parsed<DeleteTopicRequestHeader> {
  return read(() => {
    const h: DeleteTopicRequestHeader = { topic: str(ext, 'topic') };
    const cluster = optStr(ext, 'clusterName');
    if (cluster !== undefined && cluster.length > 0) h.clusterName = cluster;
    return h;
  });
}
