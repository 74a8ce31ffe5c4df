// The provider stand-ins as a process of their own, for the verify benchmark: World ID cloud
// verify, Human Passport, BrightID and a Proof of Humanity JSON-RPC node, each answering after
// the same fixed delay, in bench mode (every proof valid, every address scored and unique).
// Prints one JSON line with their URLs and the BrightID node key, then serves until killed.
import { ed25519 } from '@noble/curves/ed25519';
import {
  BENCH_ACTION,
  BENCH_APP_ID,
  BENCH_BRIGHTID_APP,
  BENCH_PASSPORT_KEY,
  BENCH_SCORER_ID,
} from './bench-setup.ts';
import {
  startBrightIdStandIn,
  startPassportStandIn,
  startProofOfHumanityRpcStandIn,
  startWorldIdStandIn,
} from './stand-ins.ts';

const delayMs = Number(process.env.STAND_IN_DELAY_MS ?? 20);
const [worldId, passport, brightId, proofOfHumanity] = await Promise.all([
  startWorldIdStandIn({ apps: { [BENCH_APP_ID]: { [BENCH_ACTION]: 0 } }, delayMs }),
  startPassportStandIn({
    apiKey: BENCH_PASSPORT_KEY,
    scorerIds: [BENCH_SCORER_ID],
    defaultScore: 25,
    delayMs,
  }),
  startBrightIdStandIn({
    secretKey: ed25519.utils.randomPrivateKey(),
    apps: { [BENCH_BRIGHTID_APP]: ['BrightID'] },
    everyoneUnique: true,
    delayMs,
  }),
  startProofOfHumanityRpcStandIn({ delayMs }),
]);
worldId.acceptAll(true);
process.stdout.write(
  `${JSON.stringify({
    worldId: worldId.url,
    passport: passport.url,
    brightId: `${brightId.url}/brightid/v6`,
    brightIdNodeKey: brightId.publicKey,
    proofOfHumanityRpc: proofOfHumanity.url,
  })}\n`,
);
const stop = async () => {
  await Promise.all([worldId.close(), passport.close(), brightId.close(), proofOfHumanity.close()]);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
