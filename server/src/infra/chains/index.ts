export {
  ANVIL_DEFAULT_CHAIN_ID,
  ANVIL_DEV_PRIVATE_KEYS,
  type Anvil,
  anvilBinary,
  anvilUnavailable,
  startAnvil,
} from './anvil.ts';
export { CHAIN_RPC_TIMEOUT_MS, type ChainRegistry, createChainRegistry } from './registry.ts';
