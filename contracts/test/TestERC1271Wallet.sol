// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// A minimal smart-contract wallet for tests: one owner EOA, whose ECDSA signature over the
/// hash is what ERC-1271 `isValidSignature` accepts. Used to test sign-in with Ethereum for
/// contract accounts, deployed (ERC-1271) and counterfactual (ERC-6492).
contract TestERC1271Wallet {
    bytes4 internal constant ERC1271_MAGIC_VALUE = 0x1626ba7e;
    bytes4 internal constant INVALID = 0xffffffff;

    address public immutable owner;

    constructor(address owner_) {
        owner = owner_;
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return INVALID;
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        address signer = ecrecover(hash, v, r, s);
        return signer != address(0) && signer == owner ? ERC1271_MAGIC_VALUE : INVALID;
    }
}

/// Deploys wallets with CREATE2, so a wallet's address is known before it exists (ERC-6492).
contract TestERC1271WalletFactory {
    function deploy(address owner, bytes32 salt) external returns (address wallet) {
        wallet = address(new TestERC1271Wallet{salt: salt}(owner));
    }

    function addressOf(address owner, bytes32 salt) external view returns (address) {
        bytes32 initCodeHash = keccak256(
            abi.encodePacked(type(TestERC1271Wallet).creationCode, abi.encode(owner))
        );
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, initCodeHash)))));
    }
}
