// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title TestWorldIDRouter
/// @notice Test stand-in for the WorldIDRouter with its exact `verifyProof` interface. It does not
///         check a Semaphore proof: a test marks a proof valid with `acceptProof`, which derives
///         the signal hash and the external nullifier hash from the raw signal, app id and action
///         the way World ID's on-chain template does (ByteHasher.hashToField). So a call verifies
///         only if the caller hashed exactly as World ID does. Errors mirror the real contracts:
///         NoSuchGroup (router), NonExistentRoot (identity manager), ProofInvalid (Semaphore verifier).
contract TestWorldIDRouter {
    error NoSuchGroup(uint256 groupId);
    error NonExistentRoot();
    error ProofInvalid();

    uint256 public constant ORB_GROUP_ID = 1;

    mapping(uint256 => bool) public roots;
    mapping(bytes32 => bool) private accepted;

    function hashToField(bytes memory value) public pure returns (uint256) {
        return uint256(keccak256(abi.encodePacked(value))) >> 8;
    }

    function externalNullifierHash(string calldata appId, string calldata action) public pure returns (uint256) {
        return hashToField(abi.encodePacked(hashToField(abi.encodePacked(appId)), action));
    }

    function addRoot(uint256 root) external {
        roots[root] = true;
    }

    /// @notice Marks a proof valid for an address signal (as dApps usually sign for the user's address).
    function acceptProof(
        uint256 root,
        address signal,
        uint256 nullifierHash,
        string calldata appId,
        string calldata action,
        uint256[8] calldata proof
    ) external {
        uint256 signalHash = hashToField(abi.encodePacked(signal));
        accepted[key(root, signalHash, nullifierHash, externalNullifierHash(appId, action), proof)] = true;
    }

    function verifyProof(
        uint256 root,
        uint256 groupId,
        uint256 signalHash,
        uint256 nullifierHash,
        uint256 externalNullifierHash_,
        uint256[8] calldata proof
    ) external view {
        if (groupId != ORB_GROUP_ID) revert NoSuchGroup(groupId);
        if (!roots[root]) revert NonExistentRoot();
        if (!accepted[key(root, signalHash, nullifierHash, externalNullifierHash_, proof)]) revert ProofInvalid();
    }

    function key(
        uint256 root,
        uint256 signalHash,
        uint256 nullifierHash,
        uint256 externalNullifierHash_,
        uint256[8] calldata proof
    ) private pure returns (bytes32) {
        return keccak256(abi.encode(root, signalHash, nullifierHash, externalNullifierHash_, proof));
    }
}
