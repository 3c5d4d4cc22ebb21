// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC721} from "@openzeppelin/contracts/token/ERC721/IERC721.sol";
import {IERC721Receiver} from "@openzeppelin/contracts/token/ERC721/IERC721Receiver.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @dev The one CustodyLedger function the escrow calls.
interface ICustodyLedger {
    function verifyEvent(
        bytes32 root,
        bytes32 eventDigest,
        bytes32 salt,
        bytes32[] calldata proof
    ) external view returns (bool);
}

/**
 * @title TradeEscrow
 * @notice A trade of one item's ProductPassport between a seller and a buyer, secured by equal
 * deposits of the native coin, with disputes decided by an arbiter both parties accepted.
 *
 * Opening. The seller, the buyer or the service (OPERATOR_ROLE) opens a trade with its
 * `Terms`: the passport, the parties, the deposit each party puts down, the price (may be 0),
 * one time window per waiting state, and the arbiter-selection rule. `termsOf(tradeId)` shows
 * them before anyone pays. Depositing is agreeing: the buyer pays exactly `deposit + price`,
 * the seller exactly `deposit` and its passport. A passport is in at most one open trade.
 *
 * The seller's passport enters the escrow in one of three ways: (1) the seller approved this
 * contract on ProductPassport and `deposit` pulls it; (2) the service relays the seller's
 * ProductPassport `TransferConsent` to this contract before the seller deposits; (3) the item
 * has no passport yet and the service relays the supplier's `MintConsent` naming this contract
 * as the first owner, so it is minted straight into escrow. In (2) and (3) the passport arrives
 * through `onERC721Received`, which accepts it only for the trade open on it, and only from its
 * seller or from a mint. A passport minted into escrow counts as the seller's: if the trade
 * does not complete it goes to the seller. The escrow refuses a passport that no open trade
 * waits for, so a consent relayed too early or too late fails instead of parking the
 * passport here. ProductPassport needs no change for any of this.
 *
 * States and the timeout of each waiting state (`timeout`, callable by anyone once the
 * state's window has passed since the state began, so no deposit is ever stuck). Each step of
 * a waiting state must come within its window (the last second included); after it, the only
 * step is `timeout`, so that a late dispute, shipment or ruling cannot change the stated outcome:
 *
 *   Open     waiting for both deposits. Either party may `cancel`. Timeout or cancel: whatever
 *            was deposited is returned (coin and passport). Outcome Cancelled.
 *   Funded   waiting for shipment. The seller calls `markShipped`, or anyone presents the
 *            anchored custody event of the handoff to the buyer (`proveShipped`). The buyer may
 *            `confirm` at once. Timeout (seller never ships): both deposits and the price go
 *            back to their payers, the passport to the seller. Outcome NotShipped.
 *   Shipped  waiting for the buyer. `confirm`, or timeout with no dispute: Completed.
 *   Disputed waiting for both parties to accept the same arbiter. Timeout (no agreement):
 *            both deposits and the price go back, the passport to the seller; nobody is paid.
 *            Outcome NoArbiter. Neither side gains by stalling: the buyer does not get the
 *            passport, the seller does not get the price; what happens to the goods is then a
 *            matter between the parties off-chain.
 *   Arbitration waiting for the accepted arbiter's `rule`. Timeout (arbiter never rules): the
 *            same as NoArbiter, and the arbiter earns nothing. Outcome NoRuling.
 *
 * Completed: both deposits return, the price goes to the seller, the passport to the buyer.
 * Ruled for the buyer: the buyer gets its deposit and the price back, the passport returns to
 * the seller, the seller's deposit goes to the arbiter. Ruled for the seller: the seller gets
 * its deposit and the price, the passport goes to the buyer, the buyer's deposit goes to the
 * arbiter. A ruling is final.
 *
 * Disputes. Either party may `dispute` while Funded or Shipped. The contract proposes an
 * arbiter by the rule named in the terms; rule 0, the only one: walk the arbiter registry in
 * registration order, starting at `keccak256(abi.encode(tradeId)) % arbiterCount()` at the time
 * of the dispute, wrapping around, skipping arbiters that are not eligible or were declined in
 * this trade, at most 32 entries per proposal. Eligible: registered, not withdrawn from the
 * registry, neither party, not flagged by the service as tied to either party. Either party may
 * `declineArbiter` (the next is proposed; a declined arbiter cannot be accepted in this trade,
 * and an acceptance of it is withdrawn) or `acceptArbiter` any eligible arbiter, the proposed
 * one or its own choice; once both accepted the same arbiter, only that arbiter can `rule`.
 * Eligibility is checked when an arbiter is accepted: a tie flagged later does not undo what
 * both parties accepted.
 *
 * Shipping proof. `proveShipped` recomputes the custody event's EIP-712 digest (domain
 * {name: "Provenance Custody", version: "1"}, as `contracts_abi.eip712` defines it) from its
 * fields and checks it with `CustodyLedger.verifyEvent` against an anchored root. The event
 * must name this trade's item (its GTIN and serial hash to the passport id), the buyer as
 * `toParty`, and an event time not before the trade was opened. The device's signature is not
 * checked on-chain: the service checked it before anchoring, which is what anchoring attests.
 *
 * Details. A trade's personal data (names, addresses, messages, photos, evidence) lives off-chain,
 * encrypted by the service; the service (OPERATOR_ROLE) records the hash of their ciphertexts'
 * chain with `recordDetails` as records are added, until the trade settles. The hash commits to
 * ciphertexts, not to content: once the data's key is destroyed it proves only that, and when,
 * records were added. `detailsHashOf` reads it.
 *
 * Money is never pushed: every amount owed is credited, and each payee takes its credit with
 * `withdraw`, so a payee that refuses coin blocks only itself. Passports move with
 * `transferFrom`, which calls no receiver hook, so no party can block a settlement.
 */
contract TradeEscrow is AccessControl, ReentrancyGuardTransient, IERC721Receiver {
    /// @notice Role allowed to open trades for the parties, flag arbiters' ties and record details hashes.
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");

    /// @notice The only arbiter-selection rule: registry order from a start derived from the trade id.
    uint8 public constant RULE_REGISTRY_ORDER = 0;

    /// @notice Longest window of a waiting state.
    uint32 public constant MAX_WINDOW = 365 days;

    uint256 private constant MAX_SCAN = 32;

    bytes32 private constant CUSTODY_EVENT_TYPEHASH = keccak256(
        "CustodyEvent(bytes16 eventId,Item item,string bizStep,string disposition,string readPoint,"
        "address fromParty,address toParty,uint64 eventTime,int16 eventTimeZoneOffset,"
        "bytes32 tagEvidence,address device)Item(string gtin,string serial)"
    );
    bytes32 private constant ITEM_TYPEHASH = keccak256("Item(string gtin,string serial)");
    bytes32 private constant CUSTODY_DOMAIN_SEPARATOR = keccak256(
        abi.encode(
            keccak256("EIP712Domain(string name,string version)"),
            keccak256("Provenance Custody"),
            keccak256("1")
        )
    );

    enum State {
        None,
        Open,
        Funded,
        Shipped,
        Disputed,
        Arbitration,
        Settled
    }

    enum Outcome {
        None,
        Completed,
        Cancelled,
        NotShipped,
        NoArbiter,
        NoRuling,
        ForBuyer,
        ForSeller
    }

    /// @notice What both parties agree to by depositing. Windows are seconds from the start of a state.
    struct Terms {
        uint256 tokenId;
        address seller;
        address buyer;
        uint96 deposit;
        uint96 price;
        uint32 depositWindow;
        uint32 shipWindow;
        uint32 confirmWindow;
        uint32 agreeWindow;
        uint32 ruleWindow;
        uint8 arbiterRule;
    }

    /// @notice Where a trade stands. `arbiter` is the proposed arbiter while Disputed, the accepted one after.
    struct Status {
        State state;
        Outcome outcome;
        bool buyerDeposited;
        bool sellerDeposited;
        bool passportHeld;
        uint40 since;
        uint40 openedAt;
        address arbiter;
        address buyerChoice;
        address sellerChoice;
        uint256 held;
        uint256 cursor;
    }

    /// @notice A custody event as a reader device signed it (see contracts_abi.eip712).
    struct CustodyEvent {
        bytes16 eventId;
        string gtin;
        string serial;
        string bizStep;
        string disposition;
        string readPoint;
        address fromParty;
        address toParty;
        uint64 eventTime;
        int16 eventTimeZoneOffset;
        bytes32 tagEvidence;
        address device;
    }

    struct Arbiter {
        uint256 position; // index in _arbiterList plus one; 0 when never registered
        bool active;
        string profileURI;
    }

    IERC721 private immutable _passport;
    ICustodyLedger private immutable _ledger;

    uint256 private _tradeCount;
    mapping(uint256 tradeId => Terms) private _terms;
    mapping(uint256 tradeId => Status) private _status;
    mapping(uint256 tokenId => uint256 tradeId) private _openTradeOf;
    mapping(address payee => uint256) private _credits;
    address[] private _arbiterList;
    mapping(address arbiter => Arbiter) private _arbiters;
    mapping(address arbiter => mapping(address party => bool)) private _ties;
    mapping(uint256 tradeId => mapping(address arbiter => bool)) private _declined;
    mapping(uint256 tradeId => bytes32) private _detailsHash;

    /// @notice Trade `tradeId` was opened by `opener` with `terms`.
    event TradeOpened(uint256 indexed tradeId, uint256 indexed tokenId, address indexed opener, Terms terms);

    /// @notice `party` deposited `amount` into trade `tradeId`.
    event Deposited(uint256 indexed tradeId, address indexed party, uint256 amount);

    /// @notice The passport of trade `tradeId` entered the escrow from `from` (zero: minted).
    event PassportEscrowed(uint256 indexed tradeId, uint256 indexed tokenId, address from);

    /// @notice Both parties deposited: trade `tradeId` is funded.
    event TradeFunded(uint256 indexed tradeId);

    /// @notice The seller said trade `tradeId` shipped.
    event ShipmentMarked(uint256 indexed tradeId);

    /// @notice The anchored custody event `eventId` proved the handoff of trade `tradeId` to the buyer.
    event ShipmentProved(uint256 indexed tradeId, bytes16 eventId, bytes32 root);

    /// @notice `party` disputed trade `tradeId`.
    event TradeDisputed(uint256 indexed tradeId, address indexed party);

    /// @notice `arbiter` was proposed for trade `tradeId` (zero: nobody eligible found).
    event ArbiterProposed(uint256 indexed tradeId, address indexed arbiter);

    /// @notice `party` declined `arbiter` for trade `tradeId`.
    event ArbiterDeclined(uint256 indexed tradeId, address indexed party, address indexed arbiter);

    /// @notice `party` accepted `arbiter` for trade `tradeId`.
    event ArbiterAccepted(uint256 indexed tradeId, address indexed party, address indexed arbiter);

    /// @notice Both parties accepted `arbiter`, who alone can now rule on trade `tradeId`.
    event ArbiterAppointed(uint256 indexed tradeId, address indexed arbiter);

    /// @notice Trade `tradeId` settled with `outcome`.
    event TradeSettled(uint256 indexed tradeId, Outcome outcome);

    /// @notice `payee` was credited `amount`, to be withdrawn.
    event Credited(address indexed payee, uint256 amount);

    /// @notice `payee` withdrew `amount`.
    event Withdrawn(address indexed payee, uint256 amount);

    /// @notice `arbiter` registered with profile `profileURI`.
    event ArbiterRegistered(address indexed arbiter, string profileURI);

    /// @notice `arbiter` left the registry.
    event ArbiterRetired(address indexed arbiter);

    /// @notice The service flagged (or unflagged) `arbiter` as tied to `party`.
    event ArbiterTieSet(address indexed arbiter, address indexed party, bool tied);

    /// @notice The service recorded `detailsHash`, the hash of trade `tradeId`'s encrypted details.
    event DetailsRecorded(uint256 indexed tradeId, bytes32 detailsHash);

    /// @notice An address argument was zero.
    error EscrowZeroAddress();

    /// @notice The terms are invalid: same parties, no deposit, a window 0 or over MAX_WINDOW, or an unknown rule.
    error EscrowInvalidTerms();

    /// @notice The trade does not exist.
    error EscrowUnknownTrade(uint256 tradeId);

    /// @notice The passport is already in open trade `tradeId`.
    error EscrowPassportBusy(uint256 tokenId, uint256 tradeId);

    /// @notice `account` may not do this in trade `tradeId`.
    error EscrowUnauthorized(uint256 tradeId, address account);

    /// @notice Trade `tradeId` is in `state`, where this is not possible.
    error EscrowWrongState(uint256 tradeId, State state);

    /// @notice `party` already deposited into trade `tradeId`.
    error EscrowAlreadyDeposited(uint256 tradeId, address party);

    /// @notice The deposit must be exactly `expected`, not `sent`.
    error EscrowWrongAmount(uint256 expected, uint256 sent);

    /// @notice The passport cannot be taken: not ProductPassport, no open trade, or not from its seller.
    error EscrowUnexpectedPassport(uint256 tokenId, address from);

    /// @notice The window of the current state ended at `deadline`: only `timeout` can settle it now.
    error EscrowExpired(uint256 tradeId, uint256 deadline);

    /// @notice The window of the current state ends at `deadline`, after `timestamp`.
    error EscrowNotExpired(uint256 tradeId, uint256 deadline, uint256 timestamp);

    /// @notice The custody event does not prove the handoff of this trade's item to its buyer.
    error EscrowInvalidShipmentProof(uint256 tradeId);

    /// @notice `arbiter` cannot arbitrate trade `tradeId` (not registered, retired, a party or tied).
    error EscrowIneligibleArbiter(uint256 tradeId, address arbiter);

    /// @notice There is no proposed arbiter to decline.
    error EscrowNoProposal(uint256 tradeId);

    /// @notice The caller is already a registered arbiter.
    error EscrowAlreadyRegistered(address arbiter);

    /// @notice The caller is not an active arbiter.
    error EscrowNotArbiter(address account);

    /// @notice A details hash must not be zero (the hash of no records).
    error EscrowZeroDetailsHash(uint256 tradeId);

    /// @notice `payee` has nothing to withdraw.
    error EscrowNothingToWithdraw(address payee);

    /**
     * @param admin Receives DEFAULT_ADMIN_ROLE: grants and revokes OPERATOR_ROLE only.
     * @param operator Receives OPERATOR_ROLE: the service's key.
     * @param passportContract The ProductPassport whose passports are traded.
     * @param ledgerContract The CustodyLedger that anchors custody events.
     */
    constructor(address admin, address operator, address passportContract, address ledgerContract) {
        if (admin == address(0) || operator == address(0) || passportContract == address(0) || ledgerContract == address(0)) {
            revert EscrowZeroAddress();
        }
        _passport = IERC721(passportContract);
        _ledger = ICustodyLedger(ledgerContract);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(OPERATOR_ROLE, operator);
    }

    // --- Trades ---------------------------------------------------------------------------

    /**
     * @notice Open a trade on `terms`; the caller must be its seller, its buyer or an operator.
     * @dev Nothing is paid here: each party agrees by depositing. The passport is then in this
     * trade until it settles; a party that opened by mistake can `cancel`.
     * @param terms The item, parties, amounts, windows and arbiter rule.
     * @return tradeId The new trade's id, counting from 1.
     */
    function open(Terms calldata terms) external returns (uint256 tradeId) {
        if (terms.seller == address(0) || terms.buyer == address(0)) revert EscrowZeroAddress();
        if (msg.sender != terms.seller && msg.sender != terms.buyer && !hasRole(OPERATOR_ROLE, msg.sender)) {
            revert EscrowUnauthorized(0, msg.sender);
        }
        bool valid = terms.seller != terms.buyer && terms.deposit > 0 && terms.arbiterRule == RULE_REGISTRY_ORDER
            && _isWindow(terms.depositWindow) && _isWindow(terms.shipWindow) && _isWindow(terms.confirmWindow)
            && _isWindow(terms.agreeWindow) && _isWindow(terms.ruleWindow);
        if (!valid) revert EscrowInvalidTerms();
        uint256 busy = _openTradeOf[terms.tokenId];
        if (busy != 0) revert EscrowPassportBusy(terms.tokenId, busy);
        tradeId = ++_tradeCount;
        _terms[tradeId] = terms;
        Status storage status = _status[tradeId];
        status.state = State.Open;
        status.since = uint40(block.timestamp);
        status.openedAt = uint40(block.timestamp);
        _openTradeOf[terms.tokenId] = tradeId;
        emit TradeOpened(tradeId, terms.tokenId, msg.sender, terms);
    }

    /**
     * @notice Deposit into an open trade, which is agreeing to its terms: the buyer sends
     * `deposit + price`, the seller `deposit`; the seller's passport is pulled in unless it
     * already arrived (the seller must have approved this contract on ProductPassport).
     * @dev The second deposit funds the trade and starts the ship window.
     * @param tradeId An open trade.
     */
    function deposit(uint256 tradeId) external payable nonReentrant {
        Terms storage terms = _terms[tradeId];
        Status storage status = _inState(tradeId, State.Open);
        bool pullPassport = false;
        uint256 expected;
        if (msg.sender == terms.buyer) {
            if (status.buyerDeposited) revert EscrowAlreadyDeposited(tradeId, msg.sender);
            expected = uint256(terms.deposit) + terms.price;
            status.buyerDeposited = true;
        } else if (msg.sender == terms.seller) {
            if (status.sellerDeposited) revert EscrowAlreadyDeposited(tradeId, msg.sender);
            expected = terms.deposit;
            status.sellerDeposited = true;
            pullPassport = !status.passportHeld;
            status.passportHeld = true;
        } else {
            revert EscrowUnauthorized(tradeId, msg.sender);
        }
        if (msg.value != expected) revert EscrowWrongAmount(expected, msg.value);
        status.held += msg.value;
        emit Deposited(tradeId, msg.sender, msg.value);
        if (pullPassport) emit PassportEscrowed(tradeId, terms.tokenId, msg.sender);
        if (status.buyerDeposited && status.sellerDeposited) _enter(tradeId, status, State.Funded);
        // Interaction last; transferFrom calls no hook back into this contract.
        if (pullPassport) _passport.transferFrom(msg.sender, address(this), terms.tokenId);
    }

    /**
     * @notice Take in the passport of an open trade, relayed by the service under its seller's
     * TransferConsent or minted here under its supplier's MintConsent.
     * @dev Reverts (refusing the passport) unless it comes from ProductPassport, a trade is open
     * on it, it is not held yet, and it comes from the trade's seller or from a mint.
     * @return The ERC-721 receiver selector.
     */
    function onERC721Received(address, address from, uint256 tokenId, bytes calldata)
        external
        nonReentrant
        returns (bytes4)
    {
        uint256 tradeId = _openTradeOf[tokenId];
        Status storage status = _status[tradeId];
        bool accepted = msg.sender == address(_passport) && tradeId != 0 && status.state == State.Open
            && !status.passportHeld && (from == address(0) || from == _terms[tradeId].seller)
            && block.timestamp <= _deadline(_terms[tradeId], status);
        if (!accepted) revert EscrowUnexpectedPassport(tokenId, from);
        status.passportHeld = true;
        emit PassportEscrowed(tradeId, tokenId, from);
        return IERC721Receiver.onERC721Received.selector;
    }

    /**
     * @notice Withdraw from a trade not yet funded: everything deposited is returned.
     * @param tradeId An open trade; the caller must be one of its parties.
     */
    function cancel(uint256 tradeId) external nonReentrant {
        Terms storage terms = _terms[tradeId];
        Status storage status = _inState(tradeId, State.Open);
        if (msg.sender != terms.seller && msg.sender != terms.buyer) revert EscrowUnauthorized(tradeId, msg.sender);
        _unwind(tradeId, status, Outcome.Cancelled);
    }

    /**
     * @notice The seller says the item shipped; starts the buyer's confirmation window.
     * @param tradeId A funded trade; the caller must be its seller.
     */
    function markShipped(uint256 tradeId) external {
        Status storage status = _inState(tradeId, State.Funded);
        if (msg.sender != _terms[tradeId].seller) revert EscrowUnauthorized(tradeId, msg.sender);
        _enter(tradeId, status, State.Shipped);
        emit ShipmentMarked(tradeId);
    }

    /**
     * @notice Anyone proves the handoff to the buyer with the anchored custody event; starts the
     * buyer's confirmation window.
     * @dev The digest is recomputed here from the event's fields, so the item, the receiving
     * party and the time are the event's own. Reverts LedgerUnknownRoot (from CustodyLedger)
     * for a root never anchored.
     * @param tradeId A funded trade.
     * @param custody The event's fields; its item must be this trade's, `toParty` the buyer,
     * `eventTime` not before the trade was opened.
     * @param salt The event's salt in the anchored tree.
     * @param root The anchored root of the event's batch.
     * @param proof The event's Merkle proof in that tree.
     */
    function proveShipped(
        uint256 tradeId,
        CustodyEvent calldata custody,
        bytes32 salt,
        bytes32 root,
        bytes32[] calldata proof
    ) external {
        Status storage status = _inState(tradeId, State.Funded);
        Terms storage terms = _terms[tradeId];
        bool matches = custody.toParty == terms.buyer && custody.eventTime >= status.openedAt
            && uint256(keccak256(abi.encode(custody.gtin, custody.serial))) == terms.tokenId;
        if (!matches || !_ledger.verifyEvent(root, _custodyDigest(custody), salt, proof)) {
            revert EscrowInvalidShipmentProof(tradeId);
        }
        _enter(tradeId, status, State.Shipped);
        emit ShipmentProved(tradeId, custody.eventId, root);
    }

    /**
     * @notice The buyer confirms receipt: both deposits return, the price goes to the seller,
     * the passport to the buyer.
     * @param tradeId A funded or shipped trade; the caller must be its buyer.
     */
    function confirm(uint256 tradeId) external nonReentrant {
        Status storage status = _inStates(tradeId, State.Funded, State.Shipped);
        if (msg.sender != _terms[tradeId].buyer) revert EscrowUnauthorized(tradeId, msg.sender);
        _complete(tradeId, status);
    }

    /**
     * @notice A party disputes the trade; an arbiter is proposed by the trade's rule and the
     * agreement window starts.
     * @param tradeId A funded or shipped trade; the caller must be one of its parties.
     */
    function dispute(uint256 tradeId) external {
        Status storage status = _inStates(tradeId, State.Funded, State.Shipped);
        _requireParty(tradeId, msg.sender);
        _enter(tradeId, status, State.Disputed);
        emit TradeDisputed(tradeId, msg.sender);
        uint256 count = _arbiterList.length;
        status.cursor = count == 0 ? 0 : uint256(keccak256(abi.encode(tradeId))) % count;
        _propose(tradeId, status);
    }

    /**
     * @notice A party declines the proposed arbiter; the next one by the trade's rule is proposed.
     * @param tradeId A disputed trade; the caller must be one of its parties.
     */
    function declineArbiter(uint256 tradeId) external {
        Status storage status = _inState(tradeId, State.Disputed);
        _requireParty(tradeId, msg.sender);
        address proposed = status.arbiter;
        if (proposed == address(0)) revert EscrowNoProposal(tradeId);
        _declined[tradeId][proposed] = true;
        if (status.buyerChoice == proposed) status.buyerChoice = address(0);
        if (status.sellerChoice == proposed) status.sellerChoice = address(0);
        emit ArbiterDeclined(tradeId, msg.sender, proposed);
        status.cursor += 1;
        _propose(tradeId, status);
    }

    /**
     * @notice A party accepts `arbiter`, the proposed one or its own choice; when both parties
     * accepted the same arbiter, it is appointed and the ruling window starts.
     * @param tradeId A disputed trade; the caller must be one of its parties.
     * @param arbiter An eligible arbiter not declined in this trade.
     */
    function acceptArbiter(uint256 tradeId, address arbiter) external {
        Status storage status = _inState(tradeId, State.Disputed);
        _requireParty(tradeId, msg.sender);
        if (!_isEligible(tradeId, arbiter)) revert EscrowIneligibleArbiter(tradeId, arbiter);
        if (msg.sender == _terms[tradeId].buyer) status.buyerChoice = arbiter;
        else status.sellerChoice = arbiter;
        emit ArbiterAccepted(tradeId, msg.sender, arbiter);
        if (status.buyerChoice == status.sellerChoice) {
            status.arbiter = arbiter;
            _enter(tradeId, status, State.Arbitration);
            emit ArbiterAppointed(tradeId, arbiter);
        }
    }

    /**
     * @notice The appointed arbiter decides, for good. For the buyer: the buyer's deposit and
     * the price return to it, the passport to the seller, the seller's deposit to the arbiter.
     * For the seller: its deposit and the price to the seller, the passport to the buyer, the
     * buyer's deposit to the arbiter.
     * @param tradeId A trade in arbitration; the caller must be its appointed arbiter.
     * @param forBuyer Whether the buyer wins.
     */
    function rule(uint256 tradeId, bool forBuyer) external nonReentrant {
        Status storage status = _inState(tradeId, State.Arbitration);
        if (msg.sender != status.arbiter) revert EscrowUnauthorized(tradeId, msg.sender);
        Terms storage terms = _terms[tradeId];
        uint256 amount = terms.deposit;
        uint256 price = terms.price;
        address winner = forBuyer ? terms.buyer : terms.seller;
        address owner = forBuyer ? terms.seller : terms.buyer;
        _settle(tradeId, status, forBuyer ? Outcome.ForBuyer : Outcome.ForSeller);
        _credit(winner, amount + price);
        _credit(msg.sender, amount);
        _passport.transferFrom(address(this), owner, terms.tokenId);
    }

    /**
     * @notice Settle a trade whose current window has passed, with the outcome its state
     * states (see the contract's description); anyone may call it.
     * @param tradeId A trade in a waiting state past its window.
     */
    function timeout(uint256 tradeId) external nonReentrant {
        Status storage status = _existing(tradeId);
        State state = status.state;
        if (state == State.Settled) revert EscrowWrongState(tradeId, state);
        uint256 end = _deadline(_terms[tradeId], status);
        if (block.timestamp <= end) revert EscrowNotExpired(tradeId, end, block.timestamp);
        if (state == State.Shipped) _complete(tradeId, status);
        else if (state == State.Open) _unwind(tradeId, status, Outcome.Cancelled);
        else if (state == State.Funded) _unwind(tradeId, status, Outcome.NotShipped);
        else if (state == State.Disputed) _unwind(tradeId, status, Outcome.NoArbiter);
        else _unwind(tradeId, status, Outcome.NoRuling);
    }

    /**
     * @notice Send the caller everything credited to it.
     * @dev Credits are cleared before the transfer; a payee whose transfer fails keeps its credit.
     */
    function withdraw() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert EscrowNothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        Address.sendValue(payable(msg.sender), amount);
    }

    // --- Arbiter registry -------------------------------------------------------------------

    /**
     * @notice Register the caller as an arbiter with a profile (who they are, how to reach them).
     * @param profileURI Where the profile is published.
     */
    function registerArbiter(string calldata profileURI) external {
        Arbiter storage entry = _arbiters[msg.sender];
        if (entry.position != 0) revert EscrowAlreadyRegistered(msg.sender);
        _arbiterList.push(msg.sender);
        entry.position = _arbiterList.length;
        entry.active = true;
        entry.profileURI = profileURI;
        emit ArbiterRegistered(msg.sender, profileURI);
    }

    /**
     * @notice The caller leaves the registry for good: no new trade can accept it. Trades that
     * already appointed it still wait for its ruling.
     */
    function retireArbiter() external {
        Arbiter storage entry = _arbiters[msg.sender];
        if (!entry.active) revert EscrowNotArbiter(msg.sender);
        entry.active = false;
        emit ArbiterRetired(msg.sender);
    }

    /**
     * @notice The service flags (or unflags) `arbiter` as tied to `party`, so that it is not
     * eligible in `party`'s trades.
     * @param arbiter An arbiter's address (registered or not).
     * @param party A seller's or buyer's address.
     * @param tied Whether they are tied.
     */
    function setTie(address arbiter, address party, bool tied) external onlyRole(OPERATOR_ROLE) {
        if (arbiter == address(0) || party == address(0)) revert EscrowZeroAddress();
        _ties[arbiter][party] = tied;
        emit ArbiterTieSet(arbiter, party, tied);
    }

    /**
     * @notice The service records the hash of trade `tradeId`'s encrypted details, replacing the
     * previous one (each hash commits to the one before it).
     * @param tradeId An existing trade, not settled.
     * @param detailsHash The hash of the details' ciphertexts so far; not zero.
     */
    function recordDetails(uint256 tradeId, bytes32 detailsHash) external onlyRole(OPERATOR_ROLE) {
        Status storage status = _existing(tradeId);
        if (status.state == State.Settled) revert EscrowWrongState(tradeId, State.Settled);
        if (detailsHash == bytes32(0)) revert EscrowZeroDetailsHash(tradeId);
        _detailsHash[tradeId] = detailsHash;
        emit DetailsRecorded(tradeId, detailsHash);
    }

    // --- Views ------------------------------------------------------------------------------

    /**
     * @notice The terms of trade `tradeId`, to read before depositing.
     * @param tradeId An existing trade.
     */
    function termsOf(uint256 tradeId) external view returns (Terms memory) {
        _existing(tradeId);
        return _terms[tradeId];
    }

    /**
     * @notice Where trade `tradeId` stands: state, deposits, proposed or appointed arbiter, coin held.
     * @param tradeId An existing trade.
     */
    function statusOf(uint256 tradeId) external view returns (Status memory) {
        return _existing(tradeId);
    }

    /**
     * @notice The end (unix seconds, inclusive) of the current state's window; 0 once settled.
     * @param tradeId An existing trade.
     */
    function deadlineOf(uint256 tradeId) external view returns (uint256) {
        return _deadline(_terms[tradeId], _existing(tradeId));
    }

    /**
     * @notice The last details hash the service recorded for trade `tradeId`; zero before any.
     * @param tradeId An existing trade.
     */
    function detailsHashOf(uint256 tradeId) external view returns (bytes32) {
        _existing(tradeId);
        return _detailsHash[tradeId];
    }

    /// @notice The number of trades opened so far; trade ids are 1 to this.
    function tradeCount() external view returns (uint256) {
        return _tradeCount;
    }

    /**
     * @notice The open (not settled) trade on passport `tokenId`, or 0.
     * @param tokenId A passport id.
     */
    function openTradeOf(uint256 tokenId) external view returns (uint256) {
        return _openTradeOf[tokenId];
    }

    /**
     * @notice What `payee` can withdraw.
     * @param payee Any address.
     */
    function creditOf(address payee) external view returns (uint256) {
        return _credits[payee];
    }

    /// @notice The number of arbiters ever registered (retired ones included).
    function arbiterCount() external view returns (uint256) {
        return _arbiterList.length;
    }

    /**
     * @notice The arbiter registered `index`-th (from 0), its profile and whether it is active.
     * @param index Below `arbiterCount()`.
     */
    function arbiterAt(uint256 index) external view returns (address arbiter, string memory profileURI, bool active) {
        arbiter = _arbiterList[index];
        Arbiter storage entry = _arbiters[arbiter];
        return (arbiter, entry.profileURI, entry.active);
    }

    /**
     * @notice Whether the service flagged `arbiter` as tied to `party`.
     * @param arbiter An arbiter's address.
     * @param party A party's address.
     */
    function isTied(address arbiter, address party) external view returns (bool) {
        return _ties[arbiter][party];
    }

    /**
     * @notice Whether `arbiter` could be accepted in trade `tradeId` now.
     * @param tradeId An existing trade.
     * @param arbiter Any address.
     */
    function isEligible(uint256 tradeId, address arbiter) external view returns (bool) {
        _existing(tradeId);
        return _isEligible(tradeId, arbiter);
    }

    /// @notice The ProductPassport contract whose passports are traded.
    function passport() external view returns (address) {
        return address(_passport);
    }

    /// @notice The CustodyLedger that proves shipments.
    function ledger() external view returns (address) {
        return address(_ledger);
    }

    /**
     * @notice The EIP-712 digest of `custody`, as a reader device signs it.
     * @param custody The event's fields.
     */
    function custodyEventDigest(CustodyEvent calldata custody) external pure returns (bytes32) {
        return _custodyDigest(custody);
    }

    // --- Internals ------------------------------------------------------------------------

    function _existing(uint256 tradeId) private view returns (Status storage status) {
        status = _status[tradeId];
        if (status.state == State.None) revert EscrowUnknownTrade(tradeId);
    }

    function _inState(uint256 tradeId, State state) private view returns (Status storage status) {
        return _inStates(tradeId, state, state);
    }

    /// @dev In state `a` or `b`, and within its window: past it, only `timeout` decides.
    function _inStates(uint256 tradeId, State a, State b) private view returns (Status storage status) {
        status = _existing(tradeId);
        if (status.state != a && status.state != b) revert EscrowWrongState(tradeId, status.state);
        uint256 end = _deadline(_terms[tradeId], status);
        if (block.timestamp > end) revert EscrowExpired(tradeId, end);
    }

    function _requireParty(uint256 tradeId, address account) private view {
        Terms storage terms = _terms[tradeId];
        if (account != terms.seller && account != terms.buyer) revert EscrowUnauthorized(tradeId, account);
    }

    function _isWindow(uint32 window) private pure returns (bool) {
        return window > 0 && window <= MAX_WINDOW;
    }

    function _enter(uint256 tradeId, Status storage status, State state) private {
        status.state = state;
        status.since = uint40(block.timestamp);
        if (state == State.Funded) emit TradeFunded(tradeId);
    }

    function _deadline(Terms storage terms, Status storage status) private view returns (uint256) {
        State state = status.state;
        uint256 window;
        if (state == State.Open) window = terms.depositWindow;
        else if (state == State.Funded) window = terms.shipWindow;
        else if (state == State.Shipped) window = terms.confirmWindow;
        else if (state == State.Disputed) window = terms.agreeWindow;
        else if (state == State.Arbitration) window = terms.ruleWindow;
        else return 0;
        return uint256(status.since) + window;
    }

    function _isEligible(uint256 tradeId, address arbiter) private view returns (bool) {
        Terms storage terms = _terms[tradeId];
        return _arbiters[arbiter].active && arbiter != terms.seller && arbiter != terms.buyer
            && !_ties[arbiter][terms.seller] && !_ties[arbiter][terms.buyer] && !_declined[tradeId][arbiter];
    }

    /// @dev Rule 0: the first eligible arbiter from `cursor` in registry order, at most MAX_SCAN looked at.
    function _propose(uint256 tradeId, Status storage status) private {
        uint256 count = _arbiterList.length;
        uint256 cursor = status.cursor;
        address proposed = address(0);
        uint256 limit = count < MAX_SCAN ? count : MAX_SCAN;
        for (uint256 i = 0; i < limit; ++i) {
            address candidate = _arbiterList[(cursor + i) % count];
            if (_isEligible(tradeId, candidate)) {
                proposed = candidate;
                cursor += i;
                break;
            }
        }
        if (proposed == address(0)) cursor += limit;
        status.cursor = cursor;
        status.arbiter = proposed;
        emit ArbiterProposed(tradeId, proposed);
    }

    /// @dev Completed: deposits back, price to the seller, passport to the buyer.
    function _complete(uint256 tradeId, Status storage status) private {
        Terms storage terms = _terms[tradeId];
        uint256 amount = terms.deposit;
        _settle(tradeId, status, Outcome.Completed);
        _credit(terms.buyer, amount);
        _credit(terms.seller, amount + terms.price);
        _passport.transferFrom(address(this), terms.buyer, terms.tokenId);
    }

    /// @dev Everything back to whoever put it in: deposits and price, the passport to the seller.
    function _unwind(uint256 tradeId, Status storage status, Outcome outcome) private {
        Terms storage terms = _terms[tradeId];
        bool buyerPaid = status.buyerDeposited;
        bool sellerPaid = status.sellerDeposited;
        bool passportHeld = status.passportHeld;
        _settle(tradeId, status, outcome);
        if (buyerPaid) _credit(terms.buyer, uint256(terms.deposit) + terms.price);
        if (sellerPaid) _credit(terms.seller, terms.deposit);
        if (passportHeld) _passport.transferFrom(address(this), terms.seller, terms.tokenId);
    }

    function _settle(uint256 tradeId, Status storage status, Outcome outcome) private {
        status.state = State.Settled;
        status.outcome = outcome;
        status.since = uint40(block.timestamp);
        status.held = 0;
        delete _openTradeOf[_terms[tradeId].tokenId];
        emit TradeSettled(tradeId, outcome);
    }

    function _credit(address payee, uint256 amount) private {
        if (amount == 0) return;
        _credits[payee] += amount;
        emit Credited(payee, amount);
    }

    function _custodyDigest(CustodyEvent calldata custody) private pure returns (bytes32) {
        bytes32 item = keccak256(
            abi.encode(ITEM_TYPEHASH, keccak256(bytes(custody.gtin)), keccak256(bytes(custody.serial)))
        );
        // Two encodings concatenated: every field is one static word, so this is abi.encode of
        // all of them, without running out of stack.
        bytes32 structHash = keccak256(
            bytes.concat(
                abi.encode(
                    CUSTODY_EVENT_TYPEHASH,
                    custody.eventId,
                    item,
                    keccak256(bytes(custody.bizStep)),
                    keccak256(bytes(custody.disposition)),
                    keccak256(bytes(custody.readPoint))
                ),
                abi.encode(
                    custody.fromParty,
                    custody.toParty,
                    custody.eventTime,
                    custody.eventTimeZoneOffset,
                    custody.tagEvidence,
                    custody.device
                )
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", CUSTODY_DOMAIN_SEPARATOR, structHash));
    }

    /// @inheritdoc AccessControl
    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == type(IERC721Receiver).interfaceId || super.supportsInterface(interfaceId);
    }
}
