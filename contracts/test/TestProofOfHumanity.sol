// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title TestProofOfHumanityV1
/// @notice Test stand-in for Proof of Humanity v1 (`ProofOfHumanity.isRegistered`), with a setter.
///         Only for tests and local development: anyone may change the registry.
contract TestProofOfHumanityV1 {
    mapping(address => bool) private registered;

    function setRegistered(address submissionId, bool value) external {
        registered[submissionId] = value;
    }

    function isRegistered(address _submissionID) external view returns (bool) {
        return registered[_submissionID];
    }
}

/// @title TestProofOfHumanityV2
/// @notice Test stand-in for Proof of Humanity v2 and its cross-chain contract: `isHuman`,
///         `humanityOf`, `boundTo` and `humanityData`, with setters. A humanity is human while it
///         is bound to an owner and not expired, as in PoH v2. Anyone may change it: tests only.
contract TestProofOfHumanityV2 {
    struct CrossChainHumanity {
        address owner;
        uint40 expirationTime;
        uint40 lastTransferTime;
        bool isHomeChain;
    }

    mapping(address => bytes20) private humanities;
    mapping(bytes20 => CrossChainHumanity) private data;

    /// @notice Binds `account` to `humanityId` until `expirationTime`; `isHomeChain` as the bridge would set it.
    function setHuman(address account, bytes20 humanityId, uint40 expirationTime, bool isHomeChain) external {
        humanities[account] = humanityId;
        data[humanityId] = CrossChainHumanity(account, expirationTime, uint40(block.timestamp), isHomeChain);
    }

    function removeHuman(address account) external {
        bytes20 humanityId = humanities[account];
        delete data[humanityId];
        delete humanities[account];
    }

    function isHuman(address _account) external view returns (bool) {
        bytes20 humanityId = humanities[_account];
        CrossChainHumanity memory humanity = data[humanityId];
        return humanityId != bytes20(0) && humanity.owner == _account && humanity.expirationTime > block.timestamp;
    }

    function humanityOf(address _account) external view returns (bytes20) {
        return humanities[_account];
    }

    function boundTo(bytes20 _humanityId) external view returns (address) {
        return data[_humanityId].owner;
    }

    function humanityData(bytes20 _humanityId) external view returns (CrossChainHumanity memory) {
        return data[_humanityId];
    }
}
