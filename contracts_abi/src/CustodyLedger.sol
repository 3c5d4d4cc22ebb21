// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/**
 * @title CustodyLedger
 * @notice Registry of reader devices per organization, and anchor of Merkle roots of custody
 * event batches, so that every event can be proven against an on-chain root.
 *
 * Leaves follow the StandardMerkleTree of npm openzeppelin merkle-tree with leaf encoding
 * `["bytes32", "bytes32"]`:
 * `leaf = keccak256(bytes.concat(keccak256(abi.encode(eventDigest, salt))))`, where
 * `eventDigest` is the EIP-712 digest of the custody event and `salt` a random 32 bytes per
 * event, kept off-chain (see `custodyLeaf`). The salt makes sibling hashes reveal nothing: a
 * proof shown for one event does not let anyone confirm a guess about another event of its
 * batch. `verifyEvent` takes the digest and the salt and computes the leaf itself, so an inner
 * node of the tree (or the root, with an empty proof) cannot pass for an event. Only the root's
 * timestamp and the batch's root are stored: anchoring costs about 72k gas per batch.
 */
contract CustodyLedger is AccessControl {
    /// @notice Role allowed to manage devices and anchor roots.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    struct Device {
        address organization;
        bool active;
    }

    mapping(address device => Device) private _devices;
    mapping(bytes32 root => uint64) private _anchoredAt;
    mapping(bytes32 batchId => bytes32) private _batchRoots;

    /// @notice `device` was registered as a reader of `organization`.
    event DeviceRegistered(address indexed device, address indexed organization);

    /// @notice `device` of `organization` was revoked; its later events are not trusted.
    event DeviceRevoked(address indexed device, address indexed organization);

    /// @notice The Merkle `root` of batch `batchId` with `count` events was anchored at `timestamp`.
    event RootAnchored(bytes32 indexed root, bytes32 indexed batchId, uint32 count, uint64 timestamp);

    /// @notice An address argument was zero.
    error LedgerZeroAddress();

    /// @notice The device was registered before (devices are never re-registered).
    error LedgerDeviceAlreadyRegistered(address device, address organization);

    /// @notice The device was never registered.
    error LedgerUnknownDevice(address device);

    /// @notice The device is already revoked.
    error LedgerDeviceRevoked(address device);

    /// @notice The root is zero or the batch is empty.
    error LedgerInvalidBatch(bytes32 root, uint32 count);

    /// @notice This root was already anchored.
    error LedgerRootAlreadyAnchored(bytes32 root);

    /// @notice This batch id was already anchored (with `root`).
    error LedgerBatchAlreadyAnchored(bytes32 batchId, bytes32 root);

    /// @notice The root was never anchored.
    error LedgerUnknownRoot(bytes32 root);

    /**
     * @param admin Receives DEFAULT_ADMIN_ROLE: grants and revokes OPERATOR_ROLE; it signs
     * nothing else, so its key can stay offline.
     * @param operator Receives OPERATOR_ROLE: the service's key that registers devices and
     * anchors roots.
     */
    constructor(address admin, address operator) {
        if (admin == address(0) || operator == address(0)) revert LedgerZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    /**
     * @notice Register `device` (its signing address) as a reader of `organization`.
     * @param organization The organization's address.
     * @param device The device's signing address; a device can be registered only once.
     */
    function registerDevice(address organization, address device) external onlyRole(OPERATOR_ROLE) {
        if (organization == address(0) || device == address(0)) revert LedgerZeroAddress();
        address previous = _devices[device].organization;
        if (previous != address(0)) revert LedgerDeviceAlreadyRegistered(device, previous);
        _devices[device] = Device(organization, true);
        emit DeviceRegistered(device, organization);
    }

    /**
     * @notice Revoke `device` for good; `deviceOrganization` still answers for it.
     * @param device A registered, active device.
     */
    function revokeDevice(address device) external onlyRole(OPERATOR_ROLE) {
        Device storage entry = _devices[device];
        if (entry.organization == address(0)) revert LedgerUnknownDevice(device);
        if (!entry.active) revert LedgerDeviceRevoked(device);
        entry.active = false;
        emit DeviceRevoked(device, entry.organization);
    }

    /**
     * @notice Anchor the Merkle `root` of custody batch `batchId` holding `count` events.
     * @dev Each root and each batch id can be anchored once; a retried transaction for an
     * anchored batch reverts LedgerBatchAlreadyAnchored, which a writer treats as done.
     * @param root StandardMerkleTree root of the batch; non-zero.
     * @param count Number of events in the batch; non-zero.
     * @param batchId The API's identifier of the batch.
     */
    function anchor(bytes32 root, uint32 count, bytes32 batchId) external onlyRole(OPERATOR_ROLE) {
        if (root == bytes32(0) || count == 0) revert LedgerInvalidBatch(root, count);
        if (_anchoredAt[root] != 0) revert LedgerRootAlreadyAnchored(root);
        bytes32 previous = _batchRoots[batchId];
        if (previous != bytes32(0)) revert LedgerBatchAlreadyAnchored(batchId, previous);
        uint64 timestamp = uint64(block.timestamp);
        _anchoredAt[root] = timestamp;
        _batchRoots[batchId] = root;
        emit RootAnchored(root, batchId, count, timestamp);
    }

    /**
     * @notice The organization `device` was registered for, or zero if never registered.
     * @param device The device's signing address.
     */
    function deviceOrganization(address device) external view returns (address) {
        return _devices[device].organization;
    }

    /**
     * @notice Whether `device` is registered and not revoked.
     * @param device The device's signing address.
     */
    function isDeviceActive(address device) external view returns (bool) {
        return _devices[device].active;
    }

    /**
     * @notice Block timestamp at which `root` was anchored, or 0 if never.
     * @param root A batch root.
     */
    function anchoredAt(bytes32 root) external view returns (uint64) {
        return _anchoredAt[root];
    }

    /**
     * @notice The root anchored for `batchId`, or zero if none.
     * @param batchId The API's identifier of the batch.
     */
    function batchRoot(bytes32 batchId) external view returns (bytes32) {
        return _batchRoots[batchId];
    }

    /**
     * @notice Whether the custody event with EIP-712 digest `eventDigest` and salt `salt` is in
     * the anchored tree `root`; reverts LedgerUnknownRoot if `root` was never anchored.
     * @dev The leaf is computed here from what it is made of, never taken as an argument: an
     * inner node is a single hash of 64 bytes, a leaf a double hash, so no node can pass.
     * @param root An anchored batch root.
     * @param eventDigest EIP-712 digest of the custody event.
     * @param salt The event's 32-byte salt, as used when the tree was built.
     * @param proof Sibling hashes from the leaf up (StandardMerkleTree `getProof`).
     */
    function verifyEvent(
        bytes32 root,
        bytes32 eventDigest,
        bytes32 salt,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (_anchoredAt[root] == 0) revert LedgerUnknownRoot(root);
        return MerkleProof.verifyCalldata(proof, root, _custodyLeaf(eventDigest, salt));
    }

    /**
     * @notice The StandardMerkleTree leaf (encoding `["bytes32", "bytes32"]`) of a custody event.
     * @param eventDigest EIP-712 digest of the custody event.
     * @param salt The event's random 32-byte salt.
     */
    function custodyLeaf(bytes32 eventDigest, bytes32 salt) external pure returns (bytes32) {
        return _custodyLeaf(eventDigest, salt);
    }

    function _custodyLeaf(bytes32 eventDigest, bytes32 salt) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(eventDigest, salt))));
    }
}
