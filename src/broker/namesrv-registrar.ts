/**
 * The broker's side of the name server protocol (RocketMQ's BrokerOuterAPI): REGISTER_BROKER to
 * every name server with the topic config table and its data version, UNREGISTER_BROKER on close.
 * Name servers are independent, so each is called on its own and one that is down only costs a
 * warning; the next period tries it again. Registrations never overlap: a request made while one
 * runs is folded into one more run after it.
 */
import type { Logger } from '../common/log.js';
import {
  bodyCrc32,
  type DataVersion,
  encodeBrokerIdentityHeader,
  encodeRegisterBrokerBody,
  encodeRegisterBrokerHeader,
  type TopicConfig,
} from '../namesrv/index.js';
import { createRequest, RequestCode, ResponseCode } from '../protocol/index.js';
import { RemotingClient } from '../remoting/index.js';

export interface BrokerIdentity {
  clusterName: string;
  brokerName: string;
  brokerId: number;
  brokerAddr: string;
  haServerAddr: string;
}

export interface RegistrationSnapshot {
  topicConfigs: TopicConfig[];
  dataVersion: DataVersion;
}

export class NamesrvRegistrar {
  private readonly client: RemotingClient;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly addrs: readonly string[],
    private readonly identity: BrokerIdentity,
    private readonly snapshot: () => RegistrationSnapshot,
    private readonly logger: Logger,
    private readonly timeoutMs = 6000,
  ) {
    this.client = new RemotingClient({ defaultTimeoutMs: timeoutMs });
  }

  /** Registers with every name server; resolves when each has answered or failed. */
  registerAll(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.registerOnce();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async registerOnce(): Promise<void> {
    const snap = this.snapshot();
    const body = encodeRegisterBrokerBody({
      topicConfigs: snap.topicConfigs,
      dataVersion: snap.dataVersion,
      filterServerList: [],
    });
    const ext = encodeRegisterBrokerHeader({
      ...this.identity,
      compressed: false,
      bodyCrc32: bodyCrc32(body),
    });
    await Promise.all(
      this.addrs.map(async (addr) => {
        try {
          const res = await this.client.invoke(addr, createRequest(RequestCode.REGISTER_BROKER, ext, body));
          if (res.code !== ResponseCode.SUCCESS) {
            this.logger.warn(
              { namesrv: addr, code: res.code, remark: res.remark },
              'name server refused the registration',
            );
          } else {
            this.logger.debug(
              { namesrv: addr, dataVersion: snap.dataVersion },
              'registered with name server',
            );
          }
        } catch (e) {
          this.logger.warn(
            { namesrv: addr, err: (e as Error).message },
            'could not register with name server',
          );
        }
      }),
    );
  }

  /** Tells every name server this broker is gone (best effort, bounded by the timeout). */
  async unregisterAll(): Promise<void> {
    if (this.running) await this.running;
    const ext = encodeBrokerIdentityHeader(this.identity);
    await Promise.all(
      this.addrs.map(async (addr) => {
        try {
          await this.client.invoke(
            addr,
            createRequest(RequestCode.UNREGISTER_BROKER, ext),
            Math.min(this.timeoutMs, 3000),
          );
        } catch (e) {
          this.logger.warn(
            { namesrv: addr, err: (e as Error).message },
            'could not unregister from name server',
          );
        }
      }),
    );
  }

  close(): void {
    this.client.close();
  }
}
