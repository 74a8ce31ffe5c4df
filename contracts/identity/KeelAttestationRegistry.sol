// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title KeelAttestationRegistry
/// @notice Personhood attestations that carry no personal data. An attestation is a 32-byte salted
/// commitment made by an attester (a Keel org's signer address); only the attester knows the
/// salt and the ids hashed under it, and hands them to the human so they can prove the
/// attestation is theirs.
/// @dev Attestations are keyed by (attester, commitment), not by commitment alone: anyone may call
/// `attest`, so nobody can front-run, claim or revoke another attester's commitment, and a
/// verifier decides which attesters it trusts by asking `isValid(attester, commitment)`. There is
/// no owner, no upgrade path and no value held: the contract has nothing to administer.
contract KeelAttestationRegistry {
    struct Attestation {
        /// Block timestamp of the attestation; 0 when the commitment was never attested.
        uint64 attestedAt;
        /// When the attestation lapses on its own (unix seconds); 0 when it does not.
        uint64 expiresAt;
        /// Block timestamp of the revocation; 0 while not revoked.
        uint64 revokedAt;
    }

    mapping(address attester => mapping(bytes32 commitment => Attestation)) private _attestations;

    event Attested(address indexed attester, bytes32 indexed commitment, uint64 expiresAt);
    event Revoked(address indexed attester, bytes32 indexed commitment);

    error ZeroCommitment();
    error ExpiryInPast(uint64 expiresAt);
    error AlreadyAttested(address attester, bytes32 commitment);
    error NotAttested(address attester, bytes32 commitment);
    error AlreadyRevoked(address attester, bytes32 commitment);

    /// @notice Records `commitment` as attested by the caller. A commitment is attested once: a
    /// new attestation of the same human uses a new salt, hence a new commitment.
    /// @param expiresAt Unix seconds after which `isValid` is false, or 0 for no expiry.
    function attest(bytes32 commitment, uint64 expiresAt) external {
        if (commitment == bytes32(0)) revert ZeroCommitment();
        if (expiresAt != 0 && expiresAt <= block.timestamp) revert ExpiryInPast(expiresAt);
        Attestation storage attestation = _attestations[msg.sender][commitment];
        if (attestation.attestedAt != 0) revert AlreadyAttested(msg.sender, commitment);
        attestation.attestedAt = uint64(block.timestamp);
        attestation.expiresAt = expiresAt;
        emit Attested(msg.sender, commitment, expiresAt);
    }

    /// @notice Revokes one of the caller's own attestations, for good.
    function revoke(bytes32 commitment) external {
        Attestation storage attestation = _attestations[msg.sender][commitment];
        if (attestation.attestedAt == 0) revert NotAttested(msg.sender, commitment);
        if (attestation.revokedAt != 0) revert AlreadyRevoked(msg.sender, commitment);
        attestation.revokedAt = uint64(block.timestamp);
        emit Revoked(msg.sender, commitment);
    }

    /// @notice True while `attester` has attested `commitment`, not revoked it, and it has not expired.
    function isValid(address attester, bytes32 commitment) external view returns (bool) {
        Attestation memory attestation = _attestations[attester][commitment];
        return
            attestation.attestedAt != 0 &&
            attestation.revokedAt == 0 &&
            (attestation.expiresAt == 0 || block.timestamp < attestation.expiresAt);
    }

    /// @notice The raw record, for verifiers that want the times as well as the answer.
    function attestationOf(address attester, bytes32 commitment) external view returns (Attestation memory) {
        return _attestations[attester][commitment];
    }
}
