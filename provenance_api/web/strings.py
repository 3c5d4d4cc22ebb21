"""Every sentence the buyer's page shows, in one place for translation (English by default).

Pure: no I/O. A catalogue maps a key to a `str.format` template; `catalogue(language)` gives
the one to use (only English so far: add a dict with the same keys to translate the page).
The reasons' own sentences come from the verification (services/anomalies.py) in English.
"""

from __future__ import annotations

from collections.abc import Mapping

ENGLISH: dict[str, str] = {
    "language": "en",
    "title": "Is this {product} genuine?",
    "title_unknown": "Is this item genuine?",
    "site_name": "Provenance check",
    # The verdict, large, then one sentence under it.
    "verdict.authentic": "Genuine",
    "verdict.authentic.lead": "This item is one its maker made, and its record checks out.",
    "verdict.suspicious": "Warning",
    "verdict.suspicious.lead": (
        "Something about this item does not add up. Read why below before you buy or use it."
    ),
    "verdict.counterfeit": "Not genuine",
    "verdict.counterfeit.lead": "This is not an item its maker made.",
    "verdict.unverifiable": "We could not check this item",
    "verdict.unverifiable.lead": "This says nothing about whether it is genuine or not.",
    "reasons.heading": "Why",
    "status.recalled": "Recalled",
    "status.stolen": "Reported stolen",
    "status.destroyed": "Reported destroyed",
    "checked_at": "Checked {when}",
    # The product.
    "product.heading": "The product",
    "product.heading_claimed": "What this code claims to be",
    "product.name": "Name",
    "product.gtin": "Product number (GTIN)",
    "product.serial": "Serial number",
    "product.supplier": "Made by",
    "product.image_alt": "Picture of {product}",
    "product.image_elsewhere": "See a picture of it on {host}",
    "product.tag": "Checked by",
    "tag.qr_label": "its printed code, signed by its maker",
    "tag.ntag21x_url": "its NFC tag, signed by its maker",
    "tag.ntag424_sun": "its NFC chip's one-time code (NTAG 424 DNA)",
    "tag.other": "its tag",
    # Who has it.
    "parties.heading": "Who has it",
    "parties.owner": "Owner",
    "parties.custodian": "Held by",
    "parties.in_transit_to": "On its way to",
    "parties.first_verified": "First checked by a buyer",
    "parties.first_verified.at": "{when} in {place}",
    "parties.first_verified.at_nowhere": "{when}",
    "parties.unknown": "not known",
    # The journey.
    "journey.heading": "Its journey",
    "journey.empty": "We have no record of this item's journey.",
    "journey.who": "Who",
    "journey.where": "Where",
    "journey.when": "When",
    "journey.proof": "Proof",
    "journey.source": "Recorded",
    "journey.reported": (
        "Reported by {who} from another system: no reader of ours scanned the tag at this step,"
        " so it rests on {who}'s word"
    ),
    "journey.position": "{lat}, {lon}",
    "proof.confirmed": "Recorded on the blockchain in block {block}",
    "proof.confirmations": "{count} confirmations since",
    "proof.confirmation": "1 confirmation since",
    "proof.no_confirmations": "no confirmations yet",
    "proof.pending": "Not yet on the blockchain: it will be recorded with the next batch",
    "proof.owed": "Being recorded on the blockchain",
    "proof.failed": "Recording on the blockchain failed; we are trying again",
    "proof.transaction": "See the transaction {tx}",
    "proof.transaction_label": "Transaction {tx}",
    # Verify it yourself (the page's own script fills this in).
    "verify_yourself.heading": "Verify it yourself",
    "verify_yourself.no_script": (
        "Your browser can check the blockchain records above by itself, without trusting"
        " us: turn on JavaScript to let this page recompute each step's record and compare"
        " it with the blockchain."
    ),
    "preview.title": "Is this item genuine?",
    "preview.text": (
        "Open this link on your phone, or tap the item's tag, to check whether it is genuine and"
        " where it has been."
    ),
    "footer.privacy": "This page loads nothing from other sites and does not track you.",
    "footer.json": "This check as data (JSON)",
    # A link that is no product link at all.
    "invalid.heading": "This is not a product link",
    # Claiming (issue 11): the link on the item's page, the claim form and its outcomes.
    "claim.offer.heading": "Bought this item?",
    "claim.offer.text": (
        "Make it yours on the blockchain with the claim code the seller gave you."
    ),
    "claim.offer.link": "Claim it",
    "claim.title": "Claim this {product}",
    "claim.title_unknown": "Claim this item",
    "claim.lead": (
        "The seller gave you a one-time claim code when you bought it. Enter it here and the"
        " item's record on the blockchain (its product passport) moves to you."
    ),
    "claim.item": "The item",
    "claim.code.label": "Claim code",
    "claim.code.hint": (
        "16 letters and digits from the seller, like 7K3M-Q9XD-2F8H-VN4P. Dashes and capitals"
        " do not matter."
    ),
    "claim.wallet.legend": "Where should the item go?",
    "claim.wallet.address": "To my wallet",
    "claim.wallet.address.hint": "You already have an Ethereum wallet: you keep its key.",
    "claim.wallet.new": "Make a wallet for me",
    "claim.wallet.new.hint": (
        "We make a new key, lock it with your passphrase and give it to you once. We keep no"
        " copy, so nobody but you can move the item on. You save it, then claim the item to it."
    ),
    "claim.address.label": "Your wallet address",
    "claim.address.hint": (
        "It starts with 0x, followed by 40 letters and digits. Paste it from your wallet."
    ),
    "claim.passphrase.label": "Passphrase for your new wallet",
    "claim.passphrase.hint": (
        "At least {count} characters; a few unrelated words are easy to remember. Nobody can"
        " reset it: without it the wallet cannot be opened."
    ),
    "claim.confirm.label": "Passphrase again",
    "claim.new.once": (
        "The next page gives you your wallet file. The item moves to it only when you say,"
        " there, that you have saved it."
    ),
    "claim.submit": "Claim this item",
    "claim.errors.heading": "There is a problem",
    "claim.error.code_missing": "Enter the claim code the seller gave you",
    "claim.error.code_format": (
        "Enter the claim code as the seller gave it: 16 letters and digits, like"
        " 7K3M-Q9XD-2F8H-VN4P"
    ),
    "claim.error.wallet": "Choose where the item should go: your wallet, or a new one",
    "claim.error.address_missing": "Enter your wallet address",
    "claim.error.address_format": (
        "Enter a wallet address: 0x followed by 40 letters (a to f) and digits"
    ),
    "claim.error.address_checksum": (
        "This address has a typing mistake: its capital letters do not match. Copy it from"
        " your wallet again"
    ),
    "claim.error.address_zero": "This address belongs to nobody: enter your own wallet's address",
    "claim.error.address_owner": (
        "This address already owns the item: enter your own wallet's address"
    ),
    "claim.error.passphrase_short": "Enter a passphrase of at least {count} characters",
    "claim.error.passphrase_long": "Enter a passphrase of at most {count} characters",
    "claim.error.confirm": "The two passphrases are not the same: type it again",
    # One answer for a wrong, expired, used or replaced code and an unknown item (no oracle).
    "claim.refused": (
        "This code does not claim this item. It may be mistyped, expired, already used or"
        " replaced by a newer one: check it, or ask the seller for a new code"
    ),
    "claim.busy": "The item changed hands while we were moving it. Try again",
    "claim.throttled.heading": "Too many attempts",
    "claim.throttled.text": (
        "Too many claim codes were tried for this item lately, so we are not checking codes"
        " for it for a while. Try again after {when}."
    ),
    "claim.throttled.seller": "If your code keeps failing, ask the seller for a new one.",
    "claim.wait.seconds": "That is in {count} seconds.",
    "claim.wait.minutes": "That is in {count} minutes.",
    "claim.unavailable.heading": "We cannot take claims right now",
    "claim.unavailable.text": "Nothing was changed. Please try again in a few minutes.",
    "claim.not_found.heading": "This is not an item we can claim",
    "claim.not_found.text": "The link does not name a product and serial number.",
    "claim.again": "Try again",
    "claim.done.heading": "This item is now yours",
    "claim.done.lead": "Its product passport has moved to your wallet.",
    "claim.done.owner": "New owner",
    "claim.done.chain": "On the blockchain",
    "claim.chain.owed": "Being recorded; this usually takes a minute or two",
    "claim.chain.confirmed": "Recorded",
    "claim.chain.failed": "Recording failed; we are trying again",
    "claim.done.next.heading": "What happens next",
    "claim.done.next.record": (
        "Once recorded, the item's page shows your address as its owner: scan or tap the"
        " item's tag again to see it."
    ),
    "claim.done.next.consent": (
        "From now on only your wallet can agree to move the item to someone else. The claim"
        " code is used up."
    ),
    # "Make a wallet for me", step 1's answer: the wallet to save, and the claim to it (step 2).
    "claim.wallet_made.heading": "Save your wallet, then claim the item",
    "claim.wallet_made.lead": (
        "Your wallet is made, but the item has not moved yet: save the wallet file first, then"
        " claim the item to it."
    ),
    "claim.wallet_made.claim.heading": "Then claim the item to it",
    "claim.wallet_made.address": "Your new wallet's address",
    "claim.wallet_made.submit": "I have saved my wallet: claim the item",
    "claim.wallet_made.lost": (
        "If you leave this page before claiming, nothing is lost: your claim code still"
        " works. Come back to make a new wallet with it."
    ),
    "claim.keystore.heading": "Save your new wallet now",
    "claim.keystore.warning": (
        "This is the only copy of your wallet's key, locked with your passphrase. We keep no"
        " copy and cannot show it again: once the item is yours, if you lose this file or"
        " forget the passphrase, nobody can recover its ownership."
    ),
    "claim.keystore.download": "Download your wallet file",
    "claim.keystore.text.label": "Your wallet file (a keystore: you can also copy it)",
    "claim.keystore.text.hint": (
        "Keep it somewhere safe, such as a password manager. Wallet apps that import an"
        " Ethereum keystore (JSON) file open it with your passphrase."
    ),
    # Trades (issue 12): signing in at a browser, the list of trades, each trade's page.
    "session.refused.heading": "This form could not be sent",
    "session.refused": (
        "It came from another site, or from a page opened before you last signed in or out."
        " Nothing was changed: go back, reload the page and try again."
    ),
    "sign_in.heading": "Sign in to your trades",
    "sign_in.lead": (
        "Sign in with your organization's API key to see your trades as a seller, a buyer or"
        " an arbiter. The key is checked once; this browser then keeps only who you are, in a"
        " cookie, until you sign out or the key is revoked."
    ),
    "sign_in.key.label": "API key",
    "sign_in.key.hint": "It starts with pk_. Paste it from where your organization keeps it.",
    "sign_in.submit": "Sign in",
    "sign_in.wrong_key": "This API key does not work: it may be mistyped or revoked",
    "sign_in.not_an_organization": (
        "This is a staff key: these pages are for the organizations that trade"
    ),
    "sign_out.submit": "Sign out",
    "trades.heading": "Your trades",
    "trades.signed_in": "Signed in as {name}",
    "trades.empty": "You have no trades yet.",
    "trades.as": "as {role}",
    "trades.open": "Open the trade",
    "trades.more": "Older trades",
    "trade.unavailable.heading": "Trades are not open yet",
    "trade.unavailable.text": (
        "The trade contract is not on the blockchain yet. Nothing was changed: please try"
        " again in a few minutes."
    ),
    "trade.not_found.heading": "No such trade",
    "trade.not_found.text": "There is no trade here that you are part of.",
    "trade.back": "All your trades",
    "trade.title": "Trade {id}: {item}",
    "trade.item.unnamed": "an item",
    "trade.item.heading": "The item",
    "trade.item.page": "See the item's own page",
    "trade.you_are.seller": "You are the seller.",
    "trade.you_are.buyer": "You are the buyer.",
    "trade.you_are.arbiter": "You are the arbiter.",
    "trade.role.seller": "the seller",
    "trade.role.buyer": "the buyer",
    "trade.role.arbiter": "the arbiter",
    "trade.parties.heading": "Who trades",
    # The state, large, then one sentence under it.
    "trade.state.opening": "Being opened",
    "trade.state.opening.lead": "Sent, waiting for the chain: this usually takes a minute.",
    "trade.state.open.none": "Waiting for both deposits",
    "trade.state.open.buyer": "Waiting for the buyer's deposit",
    "trade.state.open.seller": "Waiting for the seller's deposit",
    "trade.state.open.you": "Waiting for your deposit",
    "trade.state.open.lead": (
        "Nothing moves until both have paid in. Either may still cancel and get back what it paid."
    ),
    "trade.state.funded": "Paid in: waiting for the seller to ship",
    "trade.state.funded.you": "Paid in: waiting for you to ship",
    "trade.state.funded.lead": (
        "Both deposits, the price and the item's passport are held until the trade ends."
    ),
    "trade.state.shipped": "Shipped: waiting for the buyer to confirm receipt",
    "trade.state.shipped.you": "Shipped: waiting for you to confirm receipt",
    "trade.state.shipped.lead": (
        "The buyer confirms receipt, or disputes the trade if something is wrong."
    ),
    "trade.state.disputed": "Disputed: choosing an arbiter",
    "trade.state.disputed.lead": (
        "Both must accept the same arbiter. Either may decline the one proposed (the next is"
        " proposed) or accept it."
    ),
    "trade.state.arbitration": "In arbitration: waiting for {arbiter}'s ruling",
    "trade.state.arbitration.you": "In arbitration: waiting for your ruling",
    "trade.state.arbitration.lead": (
        "Both accepted this arbiter. It reads the trade's details and rules for one side;"
        " the ruling is final."
    ),
    "trade.state.failed": "This trade could not be opened",
    "trade.state.failed.lead": "It never reached the chain: nothing was paid or moved.",
    "trade.outcome.completed": "Completed",
    "trade.outcome.completed.lead": (
        "Both deposits went back, the price to the seller, the item's passport to the buyer."
    ),
    "trade.outcome.cancelled": "Cancelled",
    "trade.outcome.cancelled.lead": "Whatever was paid in went back to whoever paid it.",
    "trade.outcome.not_shipped": "Ended: the seller did not ship in time",
    "trade.outcome.not_shipped.lead": (
        "Both deposits and the price went back to their payers; the passport to the seller."
    ),
    "trade.outcome.no_arbiter": "Ended: no arbiter was agreed in time",
    "trade.outcome.no_arbiter.lead": (
        "Both deposits and the price went back, the passport to the seller; nobody was paid."
    ),
    "trade.outcome.no_ruling": "Ended: the arbiter did not rule in time",
    "trade.outcome.no_ruling.lead": (
        "Both deposits and the price went back, the passport to the seller; the arbiter earns"
        " nothing."
    ),
    "trade.outcome.for_buyer": "Ruled for the buyer",
    "trade.outcome.for_buyer.lead": (
        "The buyer got its deposit and the price back, the passport went back to the seller,"
        " and the seller's deposit to the arbiter. The ruling is final."
    ),
    "trade.outcome.for_seller": "Ruled for the seller",
    "trade.outcome.for_seller.lead": (
        "The seller got its deposit and the price, the passport went to the buyer, and the"
        " buyer's deposit to the arbiter. The ruling is final."
    ),
    # Deadlines and what their passing does (TradeEscrow `timeout`).
    "trade.deadline.heading": "Deadline",
    "trade.deadline.passed": "This deadline has passed: anyone may now end the trade as stated.",
    "trade.deadline.then": "If it passes",
    "trade.timeout.cancelled": (
        "The trade is cancelled: whatever was paid in goes back to whoever paid it."
    ),
    "trade.timeout.not_shipped": (
        "Both deposits and the price go back to their payers; the passport stays the seller's."
    ),
    "trade.timeout.completed": (
        "The trade completes as if the buyer had confirmed: both deposits go back, the price to"
        " the seller, the passport to the buyer."
    ),
    "trade.timeout.no_arbiter": (
        "Both deposits and the price go back, the passport to the seller; nobody is paid."
    ),
    "trade.timeout.no_ruling": (
        "Both deposits and the price go back, the passport to the seller; the arbiter earns"
        " nothing."
    ),
    "trade.window.open": "Both deposit within {span}",
    "trade.window.funded": "The seller ships within {span} of both deposits",
    "trade.window.shipped": "The buyer confirms or disputes within {span} of shipping",
    "trade.window.disputed": "Both accept an arbiter within {span} of a dispute",
    "trade.window.arbitration": "The arbiter rules within {span} of being accepted",
    "trade.terms.heading": "The terms and the timeout rules",
    "trade.terms.lead": (
        "Depositing is agreeing to these terms. Each step has a time limit; when it passes,"
        " the trade ends as stated, so no deposit is ever stuck."
    ),
    "trade.in": "in {span}",
    "trade.and": "{first} and {second}",
    "trade.ago": "{span} ago",
    "trade.day": "{count} day",
    "trade.days": "{count} days",
    "trade.hour": "{count} hour",
    "trade.hours": "{count} hours",
    "trade.minute": "{count} minute",
    "trade.minutes": "{count} minutes",
    "trade.second": "{count} second",
    "trade.seconds": "{count} seconds",
    # The money held, and who gets what on each outcome.
    "trade.coin": "{amount} ETH",
    "trade.money.heading": "The money",
    "trade.money.deposit": "Each party's deposit",
    "trade.money.price": "Price",
    "trade.money.buyer_pays": "The buyer pays in",
    "trade.money.seller_pays": "The seller pays in",
    "trade.money.held": "Held now",
    "trade.money.buyer_deposit": "Buyer's deposit",
    "trade.money.seller_deposit": "Seller's deposit",
    "trade.paid": "paid in",
    "trade.not_paid": "not yet",
    "trade.ends.heading": "Who gets what",
    "trade.ends.completed": "If the buyer confirms (or does not answer in time)",
    "trade.ends.completed.text": (
        "The buyer gets its {deposit} back and the passport; the seller gets its {deposit} back"
        " and the {price} price."
    ),
    "trade.ends.for_buyer": "If the arbiter rules for the buyer",
    "trade.ends.for_buyer.text": (
        "The buyer gets {back} back (deposit and price); the passport goes back to the seller;"
        " the seller's {deposit} deposit goes to the arbiter."
    ),
    "trade.ends.for_seller": "If the arbiter rules for the seller",
    "trade.ends.for_seller.text": (
        "The seller gets its {deposit} back and the {price} price; the passport goes to the"
        " buyer; the buyer's {deposit} deposit goes to the arbiter."
    ),
    "trade.ends.unwound": "If it is cancelled or a time limit passes before a ruling",
    "trade.ends.unwound.text": (
        "Everything goes back to whoever paid it in; the passport to the seller. Nobody is paid."
    ),
    "trade.credit": ("{amount} is yours to withdraw from the escrow."),
    "trade.credit.none": "Nothing is left for you to withdraw.",
    # Where the passport is.
    "trade.passport.heading": "The item's passport",
    "trade.passport.with_seller": "With the seller: it goes into escrow with the seller's deposit.",
    "trade.passport.escrow": "Held in escrow until the trade ends.",
    "trade.passport.buyer": "With the buyer.",
    "trade.passport.seller": "Back with the seller.",
    # The arbiter.
    "trade.arbiter.proposed": "The proposed arbiter",
    "trade.arbiter.accepted": "The arbiter both accepted",
    "trade.arbiter.none": "No arbiter can be proposed right now",
    "trade.arbiter.profile.summary": "About",
    "trade.arbiter.profile.languages": "Languages",
    "trade.arbiter.profile.jurisdictions": "Jurisdictions",
    "trade.arbiter.profile.fee_note": "Fee",
    "trade.arbiter.profile.contact": "Contact",
    "trade.arbiter.choice.none": "Not yet chosen by {party}.",
    "trade.arbiter.choice.this": "{party} accepted this arbiter.",
    "trade.arbiter.choice.other": "{party} accepted another arbiter: {arbiter}.",
    # What the viewer can do next, and what each leads to.
    "trade.next.heading": "What you can do",
    "trade.next.nothing": "Nothing for you to do now.",
    "trade.next.sign": (
        "Your organization keeps its own key: sign and send these transactions with your"
        " wallet. This page shows the result once the chain has it."
    ),
    "trade.next.self_custody": (
        "Your organization keeps its own key: each button gives you the transaction to sign"
        " and send with your wallet."
    ),
    "trade.next.sign.to": "To",
    "trade.next.sign.value": "Value (wei)",
    "trade.next.sign.data": "Data",
    "trade.next.sign.chain": "Chain",
    "trade.next.sent": "Sent, waiting for the chain. This page shows the result once it is in.",
    "trade.action.deposit": "Deposit {pays} and agree to the terms",
    "trade.action.deposit.explain.buyer": (
        "You pay in {pays}: your {deposit} deposit and the {price} price. This is agreeing to"
        " the terms and the timeout rules shown above; from then on, the trade ends only as"
        " they say."
    ),
    "trade.action.deposit.explain.seller": (
        "You pay in your {deposit} deposit and put the item's passport in escrow. This is"
        " agreeing to the terms and the timeout rules shown above; from then on, the trade"
        " ends only as they say."
    ),
    "trade.action.deposit.explain": "You pay in {pays} and agree to the terms shown above.",
    "trade.action.cancel": "Cancel the trade",
    "trade.action.cancel.explain": (
        "Possible until both have paid in: whatever was paid goes back to whoever paid it."
    ),
    "trade.action.ship": "I have shipped the item",
    "trade.action.ship.explain": (
        "The buyer then has its time limit to confirm receipt or dispute; if it does neither,"
        " the trade completes and you are paid."
    ),
    "trade.action.prove": "Prove the handoff",
    "trade.action.prove.label": "Or prove it: the custody event of the handoff to the buyer",
    "trade.action.prove.hint": (
        "The event's id, as your reader recorded it (like 0f8fad5b-d9cb-469f-a165-70867728950e)."
        " The blockchain checks that it hands this item to the buyer; the buyer's time to"
        " confirm or dispute then starts."
    ),
    "trade.action.confirm": "I received the item: complete the trade",
    "trade.action.confirm.explain": (
        "Final: both deposits go back, the {price} price goes to the seller and the passport to"
        " you. You cannot dispute afterwards."
    ),
    "trade.action.dispute": "Dispute the trade",
    "trade.action.dispute.explain": (
        "An arbiter is proposed. Once you both accept the same one, it reads the trade's"
        " details and rules; the loser's {deposit} deposit goes to the arbiter."
    ),
    "trade.action.accept": "Accept {arbiter} as arbiter",
    "trade.action.accept.explain": (
        "Once the other party accepts {arbiter} too, only {arbiter} can rule, and may read the"
        " trade's details. Its ruling is final."
    ),
    "trade.action.choose": "Accept this arbiter instead",
    "trade.action.choose.label": "Or choose another arbiter",
    "trade.action.choose.explain": (
        "The trade is decided by the arbiter you both accept. If the other party accepts the"
        " same one, only that arbiter can rule, and may read the trade's details."
    ),
    "trade.action.decline": "Decline {arbiter}",
    "trade.action.decline.explain": (
        "{arbiter} can then not be chosen in this trade, and the next arbiter is proposed."
    ),
    "trade.action.rule_for_buyer": "Rule for the buyer",
    "trade.action.rule_for_buyer.explain": (
        "Final: the buyer gets its deposit and the {price} price back, the passport goes back to"
        " the seller, and the seller's {deposit} deposit is paid to you."
    ),
    "trade.action.rule_for_seller": "Rule for the seller",
    "trade.action.rule_for_seller.explain": (
        "Final: the seller gets its deposit and the {price} price, the passport goes to the"
        " buyer, and the buyer's {deposit} deposit is paid to you."
    ),
    "trade.action.timeout": "End the trade as its time limit says",
    "trade.action.timeout.explain": "The deadline has passed: the trade ends as stated above.",
    "trade.action.withdraw": "Withdraw what is yours",
    "trade.action.withdraw.explain": "Everything the escrow owes you is sent to your address.",
    "trade.pending.heading": "Sent, waiting for the chain",
    "trade.whose.you": "Your",
    "trade.whose.seller": "The seller's",
    "trade.whose.buyer": "The buyer's",
    "trade.whose.nobody": "The",
    "trade.pending.open": "Opening the trade: sent, waiting for the chain.",
    "trade.pending.deposit": "{whose} deposit: sent, waiting for the chain.",
    "trade.pending.approve": "Putting the passport in escrow: sent, waiting for the chain.",
    "trade.pending.mint": "Making the passport, straight into escrow: sent, waiting for the chain.",
    "trade.pending.cancel": "{whose} cancellation: sent, waiting for the chain.",
    "trade.pending.ship": "{whose} shipping notice: sent, waiting for the chain.",
    "trade.pending.prove": "The proof of the handoff: sent, waiting for the chain.",
    "trade.pending.confirm": "{whose} confirmation: sent, waiting for the chain.",
    "trade.pending.dispute": "{whose} dispute: sent, waiting for the chain.",
    "trade.pending.accept": "{whose} acceptance of the arbiter: sent, waiting for the chain.",
    "trade.pending.decline": "{whose} refusal of the arbiter: sent, waiting for the chain.",
    "trade.pending.rule": "{whose} ruling: sent, waiting for the chain.",
    "trade.pending.timeout": "Ending the trade by its time limit: sent, waiting for the chain.",
    "trade.pending.other": "A change: sent, waiting for the chain.",
    "trade.failed": (
        "Something you sent did not go through on the chain, so nothing changed. The button"
        " below sends it again."
    ),
    "trade.refused": "This could not be done: {reason}",
    # The trade's details (messages, evidence), its access log, export and erasure.
    "trade.details.heading": "Messages and evidence",
    "trade.details.private": (
        "Only the two of you, and the arbiter once you both accepted it, can read these."
        " Every read is logged below."
    ),
    "trade.details.closed": (
        "You can read the trade's messages and evidence once both parties have accepted you."
    ),
    "trade.details.empty": "Nothing yet.",
    "trade.details.add": "Add a message or evidence",
    "trade.details.message.label": "Message",
    "trade.details.submit": "Add it",
    "trade.details.file.label": "A photo or a file as evidence (optional)",
    "trade.details.file.hint": "JPEG, PNG, PDF or plain text, at most 2 MB.",
    "trade.details.file.open": "Download it",
    "trade.details.unavailable": "The messages and evidence cannot be shown yet.",
    "trade.details.by": "{who}, {when}",
    "trade.access.heading": "Who read your data, and when",
    "trade.access.read": "{who} read the messages and evidence, {when}",
    "trade.access.export": "{who} exported the messages and evidence, {when}",
    "trade.access.write": "{who} added to the messages and evidence, {when}",
    "trade.access.erase": "{who} erased the messages and evidence, {when}",
    "trade.access.refused": "{who} asked to read them and was refused, {when}",
    "trade.access.times": "({count} times since {since})",
    "trade.details.who": "{name} ({role})",
    "trade.details.someone": "organization {id}",
    "trade.details.kind.details": "Contact and delivery details",
    "trade.details.kind.message": "A message",
    "trade.details.kind.photo": "A photo",
    "trade.details.kind.evidence": "A piece of evidence (a file)",
    "trade.access.empty": "Nobody has read it yet.",
    "trade.export": "Export your data",
    "trade.erase": "Erase your data",
    "trade.erase.explain": (
        "The trade's key is destroyed: nobody can read its messages and evidence again. The"
        " hash on the chain stays and proves nothing about what they said."
    ),
    "trade.erased": "This trade's data was erased.",
    # Verify it yourself, as static/proof.js says it: the page hands it every key below with
    # "verify_yourself." taken off (its data-strings attribute); {name} is filled in there.
    "verify_yourself.intro": (
        "Your browser can check this item's proofs itself, reading the blockchain directly"
        " instead of taking our word for it."
    ),
    "verify_yourself.button": "Check the proofs in this browser",
    "verify_yourself.running": "Checking…",
    "verify_yourself.nothing": "There are no proofs to check on this page.",
    "verify_yourself.noNode": (
        "No public blockchain node is configured, so your browser cannot read the chain."
    ),
    "verify_yourself.wrongChain": (
        "The blockchain node is on chain {got}, not chain {want}: nothing could be checked."
    ),
    "verify_yourself.nodeDown": (
        "The blockchain node could not be read ({error}): nothing could be checked."
    ),
    "verify_yourself.pass": "Every check your browser made passed.",
    "verify_yourself.partial": (
        "Every check your browser made passed, but some could not be made yet (see below)."
    ),
    "verify_yourself.passOther": (
        "Every check your browser made passed: the verdict above (“{verdict}”) is ours and"
        " unaltered, so heed it."
    ),
    "verify_yourself.fail": "A check failed: do not rely on this page's proofs.",
    "verify_yourself.result.pass": "Passed:",
    "verify_yourself.result.fail": "Failed:",
    "verify_yourself.result.service": "Our word:",
    "verify_yourself.result.pending": "Not checked yet:",
    "verify_yourself.byBrowser": "checked by your browser",
    "verify_yourself.byService": "rests on our word",
    "verify_yourself.notChecked": "not checked",
    "verify_yourself.eventOk": "The step's details match what was signed",
    "verify_yourself.eventBad": "The step's details do not match its fingerprint",
    "verify_yourself.signedBy": "Signed by reader {device}",
    "verify_yourself.signedBad": "The signature is not reader {device}'s",
    "verify_yourself.readerOk": "Reader {device} is registered on the blockchain to {party}",
    "verify_yourself.readerBad": "Reader {device} is not registered on the blockchain to {party}",
    "verify_yourself.readerRevoked": (
        "Reader {device} is registered to {party}, and has been revoked since"
    ),
    "verify_yourself.supplierSigned": "Signed by the supplier's key {device}",
    "verify_yourself.supplierKey": "That {device} is the supplier's key",
    "verify_yourself.proofOk": "Its proof leads to root {root}",
    "verify_yourself.proofBad": "Its proof does not lead to the root shown ({root})",
    "verify_yourself.anchored": "Root {root} is on the blockchain since {date}",
    "verify_yourself.notAnchored": "Root {root} is not on the blockchain",
    "verify_yourself.pending": "Not on the blockchain yet: only its signature could be checked",
    "verify_yourself.captured": (
        "No reader signed this step: {party} sent it to us from another system, so what it"
        " says rests on {party}'s word"
    ),
    "verify_yourself.tagRead": (
        "That the tag read at this step was genuine (we checked it when the step arrived)"
    ),
    "verify_yourself.verdictTitle": "Our verdict",
    "verify_yourself.stepsTitle": "Each step of its journey",
    "verify_yourself.attested": (
        "Our verdict “{verdict}” and its reasons are signed by key {signer}"
    ),
    "verify_yourself.attestBad": "Our signature does not match the verdict and reasons shown",
    "verify_yourself.unsigned": (
        "This verdict is not signed, so your browser cannot check that it is ours"
    ),
    "verify_yourself.operator": "Key {signer} is the service's key on the blockchain",
    "verify_yourself.notOperator": "Key {signer} is not the service's key on the blockchain",
    "verify_yourself.tagCheck": (
        "The tag check itself: we checked the tag's code against its maker's keys"
    ),
    "verify_yourself.tagCheck424": (
        "The tag check itself: an NTAG 424 DNA chip proves each tap with a secret key that only"
        " the maker and we hold, so only we can check it; our signature above is what your"
        " browser can check"
    ),
    "verify_yourself.ledger": "Ledger contract {ledger} on chain {chain}, as this page names it",
    "verify_yourself.error": "Could not check: {error}",
}

# CBV 2.0 business steps in plain words; a step not here is shown by its own name.
STEPS: dict[str, str] = {
    "commissioning": "Made and registered",
    "shipping": "Shipped",
    "receiving": "Received",
    "departing": "Left",
    "arriving": "Arrived",
    "loading": "Loaded",
    "unloading": "Unloaded",
    "transporting": "In transport",
    "storing": "Stored",
    "stocking": "Put on the shelf",
    "inspecting": "Inspected",
    "packing": "Packed",
    "unpacking": "Unpacked",
    "retail_selling": "Sold",
    "accepting": "Accepted",
    "holding": "Held",
    "picking": "Picked",
    "repairing": "Repaired",
    "destroying": "Destroyed",
    "decommissioning": "Taken out of use",
}

CATALOGUES: dict[str, tuple[Mapping[str, str], Mapping[str, str]]] = {"en": (ENGLISH, STEPS)}
DEFAULT_LANGUAGE = "en"


class Strings:
    """One language's sentences: `strings("key", name=value)` fills a template."""

    def __init__(self, messages: Mapping[str, str], steps: Mapping[str, str]) -> None:
        self.messages = messages
        self.steps = steps

    def __call__(self, key: str, **values: object) -> str:
        """The sentence `key` with `values` filled in (KeyError for a key not in the catalogue)."""
        return self.messages[key].format(**values)

    def proof_script(self) -> dict[str, object]:
        """The words static/proof.js shows: the "verify_yourself." keys without it, the business
        steps (`steps`) and the verdicts (`verdicts`) in words.

        >>> catalogue("en").proof_script()["steps"]["shipping"]
        'Shipped'
        """
        prefix = "verify_yourself."
        words: dict[str, object] = {
            key.removeprefix(prefix): text
            for key, text in self.messages.items()
            if key.startswith(prefix)
        }
        words["steps"] = dict(self.steps)
        words["verdicts"] = {
            verdict: self.messages[f"verdict.{verdict}"]
            for verdict in ("authentic", "suspicious", "counterfeit", "unverifiable")
        }
        return words

    def step(self, biz_step: str) -> str:
        """A business step in plain words.

        >>> catalogue("en").step("retail_selling"), catalogue("en").step("cycle_counting")
        ('Sold', 'Cycle counting')
        >>> catalogue("en").step("http://epcis.example.org/hc/bizstep/summarising_discharge")
        'Summarising discharge'
        """
        # Another vocabulary's step is a URI: its last segment is its name.
        name = biz_step.rstrip("/").rsplit("/", 1)[-1]
        return self.steps.get(biz_step) or name.replace("_", " ").capitalize()


def catalogue(language: str = DEFAULT_LANGUAGE) -> Strings:
    """The sentences of `language`, English when there is no catalogue for it."""
    messages, steps = CATALOGUES.get(language, CATALOGUES[DEFAULT_LANGUAGE])
    return Strings(messages, steps)
