// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// Test-only contracts: hostile parties of a TradeEscrow trade. Compiled by contracts_abi's
// build into tests/contracts/artifacts, never deployed by the service.

import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";

/// @dev A contract account that can act as a party: it forwards any call with any value.
abstract contract Puppet is IERC721Receiver {
    /// @notice Call `target` with `data` and `msg.value`; bubbles up a revert.
    function exec(address target, bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    /// @notice Accept passports, so that tests can mint to this party.
    function onERC721Received(address, address, uint256, bytes calldata) external pure returns (bytes4) {
        return IERC721Receiver.onERC721Received.selector;
    }
}

/// @notice A party that refuses every coin it is sent.
contract HostileReceiver is Puppet {
    error HostileRefused();

    receive() external payable {
        revert HostileRefused();
    }
}

/// @notice A party whose coin receipt calls back into the escrow with `reentry`, once.
contract ReentrantParty is Puppet {
    address private immutable _escrow;
    bytes private _reentry;
    bool private _strict;

    /// @notice Whether the last reentry attempt succeeded, and how many were made.
    bool public reentered;
    uint256 public attempts;
    bytes public lastError;

    constructor(address escrow) {
        _escrow = escrow;
    }

    /// @notice Call `reentry` on the escrow when coin arrives; `strict` reverts the receipt if it fails.
    function arm(bytes calldata reentry, bool strict) external {
        _reentry = reentry;
        _strict = strict;
    }

    receive() external payable {
        if (_reentry.length == 0 || attempts > 0) return;
        attempts += 1;
        (bool ok, bytes memory data) = _escrow.call(_reentry);
        reentered = ok;
        lastError = data;
        if (!ok && _strict) {
            assembly ("memory-safe") {
                revert(add(data, 32), mload(data))
            }
        }
    }
}
