import assert from 'node:assert/strict';
import { test } from 'node:test';
import { brokerEnv } from '../../src/cli/roles.js';
import { isTsmqError } from '../../src/common/errors.js';

test('broker.conf keys from the environment: TSMQ_BROKER_<key> and NAMESRV_ADDR, checked like the file', () => {
  assert.deepEqual(brokerEnv({ PATH: '/bin', HOME: '/root' }), {});
  assert.deepEqual(
    brokerEnv({
      NAMESRV_ADDR: '10.0.0.1:9876;10.0.0.2:9876',
      TSMQ_BROKER_listenPort: '10921',
      TSMQ_BROKER_brokerName: 'b7',
    }),
    { namesrvAddr: '10.0.0.1:9876;10.0.0.2:9876', listenPort: 10921, brokerName: 'b7' },
  );
  assert.throws(
    () => brokerEnv({ TSMQ_BROKER_listenPort: 'ten' }),
    (e: unknown) => isTsmqError(e, 'CONFIG_INVALID') && /TSMQ_BROKER_listenPort/.test((e as Error).message),
  );
  assert.throws(
    () => brokerEnv({ TSMQ_BROKER_noSuchKey: '1' }),
    (e: unknown) =>
      isTsmqError(e, 'CONFIG_INVALID') && /noSuchKey is not a broker.conf key/.test((e as Error).message),
  );
});
