// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/**
 * @title ProductPassport
 * @notice One ERC-721 token per serialized item ("product passport"), minted lazily: at the
 * item's first ownership transfer, straight to its first owner, or when the supplier asks. Its
 * owner is the party holding title to the item.
 *
 * The token id is `uint256(keccak256(abi.encode(gtin, serial)))` with `gtin` the 14-digit GTIN
 * as an ASCII string and `serial` the GS1 serial (AI 21, 1 to 20 bytes), so anyone holding the
 * item's GS1 Digital Link can find its passport. `contracts_abi.passport.passport_id` is the
 * Python twin.
 *
 * Transfers: the standard ERC-721 paths (`transferFrom`, `safeTransferFrom`, approvals) stay
 * open so that owners' wallets work as usual. In addition, `transferWithConsent` lets the
 * operator relay a transfer that the current owner signed off-chain as EIP-712
 * `TransferConsent(address to,uint256 tokenId,uint256 nonce,uint256 deadline)`, so owners need
 * no gas. Each owner has one nonce sequence (`nonces(owner)`); a consent is valid once, and
 * its signer can cancel it before it is used with `cancelConsent`.
 *
 * Minting: `mintWithConsent` mints only under the EIP-712
 * `MintConsent(address to,uint256 tokenId,bytes32 tagCommitment,uint256 nonce,uint256 deadline)`
 * of the product's supplier, which names the first owner; the operator relays it. The supplier
 * of a GTIN is recorded once by the operator (`setSupplier`) and can never be changed, so the
 * operator alone cannot mint an item of a registered product to anyone, nor re-point a product
 * to a key it holds. Mint consents share the supplier's nonce sequence with transfer consents,
 * so `cancelConsent` cancels either.
 *
 * Roles: the admin (DEFAULT_ADMIN_ROLE) only grants and revokes OPERATOR_ROLE, so its key can
 * stay offline; the operator is the service's key.
 */
contract ProductPassport is ERC721, AccessControl, EIP712, Nonces {
    /// @notice Role allowed to record suppliers and relay consented mints and transfers.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    bytes32 private constant TRANSFER_CONSENT_TYPEHASH =
        keccak256("TransferConsent(address to,uint256 tokenId,uint256 nonce,uint256 deadline)");

    bytes32 private constant MINT_CONSENT_TYPEHASH =
        keccak256("MintConsent(address to,uint256 tokenId,bytes32 tagCommitment,uint256 nonce,uint256 deadline)");

    mapping(uint256 tokenId => bytes32) private _tagCommitments;
    mapping(bytes32 gtinHash => address) private _suppliers;

    /// @notice `supplier` was recorded, for good, as the supplier of products with `gtin`.
    event SupplierSet(string gtin, address indexed supplier);

    /// @notice A passport was minted for the item (`gtin`, `serial`) whose tag is committed to.
    event PassportMinted(
        uint256 indexed tokenId,
        address indexed to,
        string gtin,
        string serial,
        bytes32 tagCommitment
    );

    /// @notice A passport moved on its owner's signed consent, consuming the owner's `nonce`.
    event PassportTransferredWithConsent(
        uint256 indexed tokenId,
        address indexed from,
        address indexed to,
        uint256 nonce
    );

    /// @notice `owner` cancelled the consents they signed with `nonce`.
    event ConsentCancelled(address indexed owner, uint256 nonce);

    /// @notice An address argument was zero.
    error PassportZeroAddress();

    /// @notice `owner` asked to cancel consents with `nonce`, but their current nonce is `current`.
    error PassportUnexpectedNonce(address owner, uint256 nonce, uint256 current);

    /// @notice `gtin` is not 14 ASCII digits or `serial` is not 1 to 20 bytes.
    error PassportInvalidItemId(string gtin, string serial);

    /// @notice No supplier is recorded for `gtin`, so nobody can consent to mint its items.
    error PassportUnknownSupplier(string gtin);

    /// @notice `gtin` already has supplier `supplier`; a supplier is recorded once.
    error PassportSupplierAlreadySet(string gtin, address supplier);

    /// @notice The signature is not `supplier`'s consent to this exact mint.
    error PassportInvalidMintConsent(address supplier, uint256 tokenId);

    /// @notice A passport for this item already exists.
    error PassportAlreadyMinted(uint256 tokenId);

    /// @notice The consent's deadline (unix seconds) has passed.
    error PassportExpiredConsent(uint256 deadline, uint256 timestamp);

    /// @notice `from` is not the current owner of the passport.
    error PassportIncorrectOwner(address from, uint256 tokenId, address owner);

    /// @notice The signature is not the current owner's consent to this exact transfer.
    error PassportInvalidConsent(address owner, uint256 tokenId);

    /**
     * @param admin Receives DEFAULT_ADMIN_ROLE: grants and revokes OPERATOR_ROLE; it signs
     * nothing else, so its key can stay offline.
     * @param operator Receives OPERATOR_ROLE: the service's key that mints and relays.
     */
    constructor(
        address admin,
        address operator
    ) ERC721("Provenance Product Passport", "PASS") EIP712("ProductPassport", "1") {
        if (admin == address(0) || operator == address(0)) revert PassportZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    /**
     * @notice Record `supplier` as the supplier of products with GTIN `gtin`, once and for good.
     * @dev Set once so that the operator cannot later point a product at a key it holds. What
     * remains to trust: the operator could record a key of its own for a GTIN never recorded
     * before; the SupplierSet event makes that public.
     * @param gtin 14-digit GTIN as ASCII digits.
     * @param supplier The address whose consent mints this product's passports.
     */
    function setSupplier(string calldata gtin, address supplier) external onlyRole(OPERATOR_ROLE) {
        if (supplier == address(0)) revert PassportZeroAddress();
        if (!_isGtin(bytes(gtin))) revert PassportInvalidItemId(gtin, "");
        bytes32 key = keccak256(bytes(gtin));
        address current = _suppliers[key];
        if (current != address(0)) revert PassportSupplierAlreadySet(gtin, current);
        _suppliers[key] = supplier;
        emit SupplierSet(gtin, supplier);
    }

    /**
     * @notice Mint the passport of item (`gtin`, `serial`) straight to `to`, its first owner,
     * under the supplier's EIP-712 `MintConsent`, recording `tagCommitment`.
     * @dev Consumes the supplier's nonce (shared with transfer consents): a consent mints
     * once and `cancelConsent` cancels it. Uses `_safeMint`: a contract recipient must
     * implement IERC721Receiver.
     * @param to First owner, named in the consent (the supplier itself, or its first buyer).
     * @param gtin 14-digit GTIN as ASCII digits; its supplier must be recorded.
     * @param serial GS1 serial number, 1 to 20 bytes.
     * @param tagCommitment Commitment to the item's physical tag (`contracts_abi.passport`).
     * @param deadline Last unix second (inclusive) at which the consent is valid.
     * @param signature The supplier's signature over the EIP-712 digest.
     * @return tokenId The passport id, `passportId(gtin, serial)`.
     */
    function mintWithConsent(
        address to,
        string calldata gtin,
        string calldata serial,
        bytes32 tagCommitment,
        uint256 deadline,
        bytes calldata signature
    ) external onlyRole(OPERATOR_ROLE) returns (uint256 tokenId) {
        if (block.timestamp > deadline) revert PassportExpiredConsent(deadline, block.timestamp);
        if (to == address(0)) revert PassportZeroAddress();
        tokenId = passportId(gtin, serial);
        if (_ownerOf(tokenId) != address(0)) revert PassportAlreadyMinted(tokenId);
        address supplier = _suppliers[keccak256(bytes(gtin))];
        if (supplier == address(0)) revert PassportUnknownSupplier(gtin);
        uint256 nonce = _useNonce(supplier);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(MINT_CONSENT_TYPEHASH, to, tokenId, tagCommitment, nonce, deadline))
        );
        if (!SignatureChecker.isValidSignatureNow(supplier, digest, signature)) {
            revert PassportInvalidMintConsent(supplier, tokenId);
        }
        _tagCommitments[tokenId] = tagCommitment;
        _safeMint(to, tokenId);
        emit PassportMinted(tokenId, to, gtin, serial, tagCommitment);
    }

    /**
     * @notice Relay a transfer of `tokenId` from its owner `from` to `to`, authorized by the
     * owner's EIP-712 `TransferConsent` signature (ECDSA, or ERC-1271 for contract owners).
     * @dev The owner's current nonce is part of the signed message and is consumed here, so a
     * consent cannot be replayed; it also cancels any other consent the owner signed with the
     * same nonce. Plain ERC-721 transfers by owners and approved operators remain available.
     * @param from Current owner; must match `ownerOf(tokenId)`.
     * @param to New owner; a contract must implement IERC721Receiver.
     * @param tokenId Passport to transfer.
     * @param deadline Last unix second (inclusive) at which the consent is valid.
     * @param signature The owner's signature over the EIP-712 digest.
     */
    function transferWithConsent(
        address from,
        address to,
        uint256 tokenId,
        uint256 deadline,
        bytes calldata signature
    ) external onlyRole(OPERATOR_ROLE) {
        if (block.timestamp > deadline) revert PassportExpiredConsent(deadline, block.timestamp);
        address owner = _requireOwned(tokenId);
        if (owner != from) revert PassportIncorrectOwner(from, tokenId, owner);
        uint256 nonce = _useNonce(owner);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(TRANSFER_CONSENT_TYPEHASH, to, tokenId, nonce, deadline))
        );
        if (!SignatureChecker.isValidSignatureNow(owner, digest, signature)) {
            revert PassportInvalidConsent(owner, tokenId);
        }
        _safeTransfer(from, to, tokenId, "");
        emit PassportTransferredWithConsent(tokenId, from, to, nonce);
    }

    /**
     * @notice Cancel every transfer consent the caller signed with `nonce`, their current
     * nonce, before the operator relays it: `transferWithConsent` then reverts
     * PassportInvalidConsent for it.
     * @dev Consumes the caller's nonce. `nonce` must be the current one, so that a cancellation
     * sent after its consent was already relayed reverts instead of cancelling the next one.
     * @param nonce The caller's current `nonces(msg.sender)`, the nonce of the consent to cancel.
     */
    function cancelConsent(uint256 nonce) external {
        uint256 current = _useNonce(msg.sender);
        if (current != nonce) revert PassportUnexpectedNonce(msg.sender, nonce, current);
        emit ConsentCancelled(msg.sender, nonce);
    }

    /**
     * @notice The commitment to the physical tag recorded at mint.
     * @param tokenId An existing passport (reverts ERC721NonexistentToken otherwise).
     */
    function tagCommitmentOf(uint256 tokenId) external view returns (bytes32) {
        _requireOwned(tokenId);
        return _tagCommitments[tokenId];
    }

    /**
     * @notice The supplier recorded for `gtin`; the zero address if none.
     * @param gtin 14-digit GTIN as ASCII digits.
     */
    function supplierOf(string calldata gtin) external view returns (address) {
        return _suppliers[keccak256(bytes(gtin))];
    }

    /**
     * @notice The EIP-712 digest the supplier signs to consent to a mint.
     * @param to First owner.
     * @param tokenId Passport to mint.
     * @param tagCommitment Commitment to the item's physical tag.
     * @param nonce The supplier's current `nonces(supplier)`.
     * @param deadline Last unix second at which the consent is valid.
     */
    function mintConsentDigest(
        address to,
        uint256 tokenId,
        bytes32 tagCommitment,
        uint256 nonce,
        uint256 deadline
    ) external view returns (bytes32) {
        return _hashTypedDataV4(
            keccak256(abi.encode(MINT_CONSENT_TYPEHASH, to, tokenId, tagCommitment, nonce, deadline))
        );
    }

    /**
     * @notice The EIP-712 digest the owner signs to consent to a transfer.
     * @param to New owner.
     * @param tokenId Passport to transfer.
     * @param nonce The owner's current `nonces(owner)`.
     * @param deadline Last unix second at which the consent is valid.
     */
    function transferConsentDigest(
        address to,
        uint256 tokenId,
        uint256 nonce,
        uint256 deadline
    ) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(TRANSFER_CONSENT_TYPEHASH, to, tokenId, nonce, deadline)));
    }

    /**
     * @notice The passport id of item (`gtin`, `serial`); reverts PassportInvalidItemId if malformed.
     * @param gtin 14-digit GTIN as ASCII digits.
     * @param serial GS1 serial number, 1 to 20 bytes.
     */
    function passportId(string calldata gtin, string calldata serial) public pure returns (uint256) {
        uint256 serialLength = bytes(serial).length;
        // GS1 General Specifications §3.2: AI 21 is up to 20 characters.
        bool valid = serialLength > 0 && serialLength <= 20 && _isGtin(bytes(gtin));
        if (!valid) revert PassportInvalidItemId(gtin, serial);
        return uint256(keccak256(abi.encode(gtin, serial)));
    }

    /// @dev GS1 General Specifications §3.2: AI 01 is n14 (14 ASCII digits).
    function _isGtin(bytes calldata g) private pure returns (bool valid) {
        valid = g.length == 14;
        for (uint256 i = 0; valid && i < 14; ++i) {
            valid = g[i] >= "0" && g[i] <= "9";
        }
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, AccessControl) returns (bool) {
        return super.supportsInterface(interfaceId);
    }
}
