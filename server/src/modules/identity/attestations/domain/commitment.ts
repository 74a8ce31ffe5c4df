import { encodeAbiParameters, type Hex, keccak256, toHex } from 'viem';

/** Domain tag hashed into every commitment, so no other protocol's hash can pass for one. */
export const COMMITMENT_DOMAIN = keccak256(toHex('keel.identity.attestation.v1'));
export const SALT_BYTES = 32;

export interface Opening {
  /** 32 random bytes, fresh per attestation (so attestations on two chains are not linkable). */
  readonly salt: Hex;
  readonly orgId: string;
  readonly subjectId: string;
  readonly verificationId: string;
}

/**
 * The value written on chain for one attestation:
 *
 *   keccak256(abi.encode(bytes32 domain, bytes32 salt, string orgId, string subjectId, string verificationId))
 *
 * It reveals nothing without the opening: the ids are Keel's random ids (no personal data), and
 * the salt makes the hash unguessable even to someone who knows them.
 */
export function commitmentOf(opening: Opening): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'string' }, { type: 'string' }, { type: 'string' }],
      [COMMITMENT_DOMAIN, opening.salt, opening.orgId, opening.subjectId, opening.verificationId],
    ),
  );
}
