// Generates examples/support/messages.csv: synthetic customer-support messages for ticket routing.
//
//   swift scripts/make-support-data.swift > examples/support/messages.csv
//
// SUPPORT_SCALE=N multiplies every queue's row count and SUPPORT_SEED=S changes the seed (a longer stream of traffic
// for `microscale simulate`, e.g. SUPPORT_SCALE=5 SUPPORT_SEED=2); without them the output is the committed file.
//
// Every message is invented. "Larkspur Home Internet" is a fictional broadband provider that also posts routers and
// mesh Wi-Fi kits; its products, couriers, collection agencies, solicitors, people and addresses are made up too
// (e-mail addresses use the reserved example.* domains).
//
// Output: RFC 4180 CSV with the header `text,queue,urgency`, one row per message, UTF-8, LF line endings. Each row
// is a template for one of ten queues with its slots filled, then given a register (formal, neutral, casual) and
// some noise (openers, sign-offs, typos, text-speak, shouting, emoji). About one message in ten mentions two
// topics and is labelled by its primary intent, and some legal disputes are worded without legal vocabulary, so no
// single keyword separates the queues. A seeded SplitMix64 drives every choice: each run prints the same file.

import Foundation

// MARK: - Random numbers

/// SplitMix64 (the same constants as Datasets.SeededGenerator), with the few draws this script needs. The draws are
/// written out here rather than taken from the standard library so the output cannot change with the toolchain.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `0..<n` (the modulo bias is far below anything that matters here).
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + below(range.count) }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(UInt64(1) << 53) < p }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// Fisher–Yates.
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) { items.swapAt(i, below(i + 1)) }
    }
}

// MARK: - Labels

enum Urgency: String {
    case low, normal, high

    /// One step up or down, staying in range.
    func nudged(up: Bool) -> Urgency {
        switch self {
        case .low: return up ? .normal : .low
        case .normal: return up ? .high : .low
        case .high: return up ? .high : .normal
        }
    }

    /// Faces that fit the mood of a message of this urgency.
    var emoji: [String] {
        switch self {
        case .low: return ["🙂", "👍", "😊"]
        case .normal: return ["🙏", "😕", "🤞"]
        case .high: return ["😡", "😤", "🙄", "😩"]
        }
    }
}

/// A message skeleton with `{slot}` placeholders and the urgency its content usually implies.
struct Template {
    let urgency: Urgency
    let text: String

    static func low(_ text: String) -> Template { Template(urgency: .low, text: text) }
    static func normal(_ text: String) -> Template { Template(urgency: .normal, text: text) }
    static func high(_ text: String) -> Template { Template(urgency: .high, text: text) }

    /// Written like a chat message (starts in lower case), so it never gets a formal greeting.
    var isCasual: Bool { text.first?.isLowercase ?? false }
}

/// One queue's templates. `twoTopic` ones also touch another queue's subject and are labelled by their primary
/// intent; they are drawn for about one message in ten.
struct TemplateSet {
    let single: [Template]
    let twoTopic: [Template]
}

enum Queue: String, CaseIterable {
    case billing, refund, outage
    case accountAccess = "account_access"
    case shipping, cancellation
    case planChange = "plan_change"
    case technicalSetup = "technical_setup"
    case privacyData = "privacy_data"
    case legalDispute = "legal_dispute"

    /// Rows per queue: roughly balanced but deliberately unequal (7–12% each, legal_dispute about 11%).
    var target: Int {
        switch self {
        case .billing: return 290
        case .refund: return 240
        case .outage: return 300
        case .accountAccess: return 250
        case .shipping: return 260
        case .cancellation: return 230
        case .planChange: return 220
        case .technicalSetup: return 270
        case .privacyData: return 210
        case .legalDispute: return 290
        }
    }

    var templates: TemplateSet {
        switch self {
        case .billing: return billingTemplates
        case .refund: return refundTemplates
        case .outage: return outageTemplates
        case .accountAccess: return accountAccessTemplates
        case .shipping: return shippingTemplates
        case .cancellation: return cancellationTemplates
        case .planChange: return planChangeTemplates
        case .technicalSetup: return technicalSetupTemplates
        case .privacyData: return privacyDataTemplates
        case .legalDispute: return legalDisputeTemplates
        }
    }
}

// MARK: - Templates
//
// Slots are listed in `drawSlot`. Within one message a slot keeps its value, and `{x2}` is a second, different
// value from the same pool as `{x}` (`{amount2}` always the smaller sum, `{plan2}` the faster plan). Two-topic
// templates are labelled by the main request: a refund asked for a past outage is `refund`, an ongoing outage that
// also asks for money back is `outage`, and any bank chargeback or escalation outside Larkspur is `legal_dispute`.

let billingTemplates = TemplateSet(single: [
    .low("Can I get a VAT receipt for invoice {invoice}? I need it for my expenses claim."),
    .low("How do I switch my payment method from card to direct debit?"),
    .low("vat invoice for {month} please"),
    .low("Is it possible to move the date my direct debit comes out? I get paid on the 28th and {date} is awkward."),
    .low("Where can I download older invoices? The app only shows the last three."),
    .low("Quick question about my bill: what is the 'line maintenance' charge of {amount}?"),
    .low("Could invoices go to {email} from now on? It's the inbox my accountant uses."),
    .low("Do you take payment by bank transfer? My card expired and the new one hasn't come yet."),
    .low("I run a small business from home in {city}. Can the invoices show my company name for VAT?"),
    .low("Please update the billing address to my new flat in {city}. Invoices keep going to the old place."),
    .normal("Why is my first bill {amount}? I was told the plan was {amount2} a month."),
    .normal("My direct debit failed this month because I changed banks. How do I pay the {amount} outstanding?"),
    .normal("There's a charge of {amount} on invoice {invoice} for 'out of bundle calls'. I don't even use the landline."),
    .normal("Bill went up again. {amount} this month, was {amount2}. Why?"),
    .normal("I've been charged for {addon}, which I never asked for. Can you explain where that came from?"),
    .high("I've been charged twice this month, {amount} on {date} and again two days later. Which one is the real one?"),
    .normal("payment failed again??"),
    .normal("invoice {invoice} is wrong"),
    .normal("Your price rise letter says {amount} but my account shows {amount2}. Which is it?"),
    .high("This is the THIRD month in a row my bill has been wrong. I'm sick of chasing you. Fix the invoice and send me a corrected one."),
    .normal("Absolutely ridiculous. I was told on the phone that {plan} would be {amount2} a month and now I'm paying {amount}. Sort it out."),
    .normal("There's a {amount} late payment fee on invoice {invoice}. The payment went out on time, it's on my statement. Please remove the fee."),
    .high("My account says I'm in arrears but I've paid every month by direct debit. Please check account {acct} today."),
    .normal("can i pay my bill in two halves this month, money is a bit tight after christmas"),
    .normal("Setting up the direct debit keeps failing with 'sort code not recognised'."),
    .normal("I'm a bit confused. I moved from {plan2} to {plan} in {month} and expected my bill to go down, but this week's invoice is {amount}, more than before. There's a line called 'pro-rata adjustment' I don't understand and another called 'equipment' even though I already own the router. Could somebody walk me through it? I'm not angry, I just want to understand what I'm paying for."),
    .normal("Who is {full}? Their name is on my latest invoice instead of mine."),
    .normal("I want to make a complaint about my bill. Invoice {invoice} has {addon} on it again after I was told it had been removed."),
], twoTopic: [
    // Two topics: the billing question comes first.
    .normal("I might upgrade to {plan2} later, but first can you explain why this month's bill is {amount}? It doesn't match anything I signed up for."),
    .normal("My bill shows {amount} for a {kit} I returned in {month}. The return was tracked, order {order}. Please take it off."),
    .normal("Internet has been fine lately, the bill hasn't. {amount} for an 'engineer visit' when nobody came out. Can you take it off?"),
    .low("I'm leaving at the end of the contract anyway, but before I go I need a proper VAT invoice for every month since {month}."),
])

let refundTemplates = TemplateSet(single: [
    .normal("Where is my refund? I was promised {amount} back {days} days ago."),
    .normal("refund status pls"),
    .normal("I returned the {kit} on {date} (order {order}). When will I get my {amount} back?"),
    .normal("You overcharged me {amount} on invoice {invoice} and your colleague agreed. Still no refund. Please chase it."),
    .normal("Can I get a refund for {addon}? I cancelled it within 14 days."),
    .high("I was double charged for {month}. Please refund the duplicate payment of {amount} to my card as soon as possible."),
    .low("I paid {amount} for next-day delivery and it took a week. I'd like the delivery fee back."),
    .high("I have now waited SIX WEEKS for a refund of {amount}. Every time I call I'm told 'five to seven working days'. It's a joke. Just pay me what you owe."),
    .normal("Now my account is closed you owe me a credit balance of {amount}. Please send it to my bank account, the card you have is cancelled."),
    .normal("Refund not received. Ref {case}."),
    .normal("The engineer never turned up on {date} but I was charged the {amount} call-out fee. I want that back."),
    .low("How long do refunds usually take to reach a card?"),
    .high("You took {amount} from my account after I'd already cancelled. Please return it."),
    .normal("Your agent {first} promised a goodwill credit of {amount}. It never appeared. Can you refund it to my card instead?"),
    .low("I'd like to return the {kit} for a refund, it's within the 30 day window. Order {order}."),
    .normal("money back for the router pls, sent it back weeks ago"),
    .normal("Refund {case} says 'processed' but my bank shows nothing. What date was it paid so I can check?"),
    .low("Can the refund go to my partner's account? My card was cancelled after I lost it."),
    .normal("I was charged the full {amount} early exit fee even though you said it would be waived because of the move. Please refund it."),
    .high("Paid {amount} twice for the same order {order}. Need one back asap"),
    .normal("I was billed {amount} a month on {plan} for {months} months instead of the {amount2} I was promised. I'd like the difference refunded."),
    .normal("Sorry to bother you again. In {month} I bought the {kit}, realised my flat is too small to need it and sent it back with {courier}. Tracking says your returns centre got it on {date}. I was told the refund of {amount} would take ten days and it has now been {days}. I'm not trying to be difficult, I just need to know if something went wrong at your end."),
    .normal("Why did I only get {amount2} back when I paid {amount}?"),
    .high("Refund the {amount} you took this morning. I DID NOT agree to a payment on this date."),
    .normal("I cancelled inside the cooling-off period on {date}, so I expect the full {amount} setup fee back."),
], twoTopic: [
    // Two topics: the money back is the request.
    .normal("The internet was down from {date} for {days} days. It's working again now, but I'd like a refund for the days I paid for and couldn't use."),
    .low("Now that the cancellation has gone through, can you refund the {amount} left on my account?"),
    .normal("My bill was wrong AGAIN, {amount} instead of {amount2}. I don't want an explanation, I want the money back."),
    .normal("The {kit} arrived smashed so I sent it back. I don't want a replacement, I want a refund. Order {order}."),
    .normal("Broadband was out all last week and I had to buy {amount} of mobile data to keep working. Can you reimburse that?"),
])

let outageTemplates = TemplateSet(single: [
    .normal("internet down"),
    .high("No internet since {time} this morning. I work from home and have a client call at 2. Please help!"),
    .normal("Is there an outage in {city}? All the lights on my {kit} are red."),
    .normal("Paying for {plan} and getting {mbps} Mbps. It's been like this for {days} days."),
    .normal("Connection drops every 20 minutes or so, mostly in the evening. I've already restarted the router."),
    .high("The internet has cut out all week and I run a business from home. I need an engineer, not another 'have you tried turning it off and on again'."),
    .low("wifi is super slow tonight, is something going on?"),
    .high("Broadband down AGAIN. Third time this month. {city}."),
    .high("Our whole street in {city} has had no internet since last night. When will it be fixed?"),
    .normal("There's a flashing orange light on the hub and nothing connects. I've restarted it twice."),
    .low("Latency jumps to 300ms every evening, online games are unplayable. Daytime is fine."),
    .low("Is there planned maintenance tonight? The status page doesn't say anything."),
    .high("NOTHING IS WORKING. No internet, no phone line. My elderly mother relies on the landline for her alarm."),
    .high("Upload speed has dropped to almost nothing since {date}. I can't send files for work."),
    .normal("getting maybe {mbps} mbps when i should get 500. whats going on"),
    .high("The engineer fixed the line on {date} but it's gone again today. Same fault."),
    .high("Offline for {hours} hours now. Any update on the fault in {city}?"),
    .normal("I'm not sure if this is an outage or something in my house. Since about {time} everything has been patchy: the TV box keeps buffering, my son's games disconnect and video calls freeze. I've restarted the hub, unplugged the mesh units and tried a cable straight into the laptop, and it still drops. The light on the {kit} goes green, then orange, then green again. Could you check the line from your end?"),
    .normal("Dropouts every evening between 7 and 11, fine during the day. Can you test my line? Account {acct}."),
    .high("We've got no internet and I'm on call for work tonight. I need this fixed today."),
    .low("Speeds have been pretty poor for about a fortnight."),
    .high("The fibre light on the wall box is off. Nothing I do brings it back."),
    .normal("Is the outage in {city} fixed yet? Status page still says 'investigating'."),
    .normal("My internet keeps dropping whenever it rains. Seriously."),
    .low("The connection is stable but slow, around {mbps} Mbps on {plan}. Could you run a line test when you get a chance?"),
    .normal("Outage in {city}?"),
    .high("This is a complaint. {days} days of dropouts and every call ends with 'we'll monitor the line'. I need an engineer."),
], twoTopic: [
    // Two topics: the service is still broken, so getting it back is the request.
    .high("Internet's been down since {weekday} and I'd like money off for it, but mostly I just need it working again. I have exams."),
    .high("No internet for {days} days. If it isn't fixed by the weekend I'll be cancelling."),
    .high("Still no connection. Why am I paying {amount} a month for this? Fix it please."),
    .normal("The mesh worked fine for months, but since yesterday nothing connects and the hub shows a red light. Was there an update, or is it the line?"),
])

let accountAccessTemplates = TemplateSet(single: [
    .normal("Can't log in."),
    .normal("I've forgotten my password and the reset email never arrives. I've checked spam."),
    .high("My account is locked after too many attempts and I need to pay my bill today."),
    .high("The 2FA code goes to my old phone number, which I don't have any more. How do I get back in?"),
    .low("I need to change the email on my account from {email} to {email2}."),
    .normal("The password reset link says 'expired' every single time. Tried {times} times now."),
    .high("I think someone else has logged into my account. I got an email about a password change I didn't make."),
    .low("How do I add my partner as a second account holder so they can manage things?"),
    .normal("locked out of the app again"),
    .normal("The login page loops back to itself after I enter the code."),
    .normal("I no longer have access to {email}, which is the address on my account. How else can I verify myself?"),
    .normal("My late father's account is in his name. How do I get access to manage it?"),
    .low("Where do I turn on two-factor authentication?"),
    .normal("Never received the verification text. My mobile ends in {last4}."),
    .normal("App says 'account not found' but I've been a customer for {years} years!"),
    .normal("Can't get into my account to download invoices, it keeps saying wrong password but I KNOW it's right"),
    .normal("My username is {email} but the site says there's no account with that email."),
    .high("Please unlock my account ASAP. I'm stuck abroad and need to check my bill."),
    .normal("I changed my email last week and now I can't log in with either the old one or the new one."),
    .low("Security questions? I don't remember setting any. How can I reset them?"),
    .low("How do I log out of all devices? I left myself logged in at a friend's."),
    .normal("I'm having real trouble getting into my account. I set it up when we moved to {city} using my work email, and I've since left that job, so the reset link goes somewhere I can't see. The chat asks me to log in first, which is the whole problem. I can confirm my address, my last payment of {amount} and my date of birth if that helps. Could you change the login to {email}?"),
    .normal("2fa not working"),
    .high("Got a 'suspicious sign-in' alert from {city}. I'm not in {city}. Please lock my account."),
    .high("'Account suspended' message when I log in?? what did i do"),
], twoTopic: [
    // Two topics: getting back into the account comes first.
    .high("Someone got into my account and changed the email. I want it back, and I'd also like to know what they could see."),
    .normal("I can't log in to check why my bill is {amount}. The password reset isn't working."),
    .normal("Locked out of my account, so I can't even cancel online. Can you reset it first?"),
    .normal("I need to reset my password before I can order the {kit} and the reset email isn't coming."),
    .high("Password reset emails are going to my ex's address. Please change it to {email} and remove theirs."),
])

let shippingTemplates = TemplateSet(single: [
    .normal("Where is my {kit}? Order {order}."),
    .normal("Tracking for {order} hasn't updated in {days} days."),
    .normal("The box arrived crushed and one of the mesh units rattles. Order {order}."),
    .normal("I ordered the {kit} but got a {kit2} instead."),
    .high("My router was supposed to arrive on {date}, which is also my go-live date. Nothing yet, and without it I'll have no internet at all."),
    .high("{courier} say they delivered my parcel but it isn't here. Nobody in my building has it."),
    .low("Can I change the delivery address for order {order}? I'm at work all week."),
    .low("Could you deliver to a neighbour or a safe place? I'm never in during the day."),
    .normal("Parcel was left out in the rain and the box is soaked through. Is the hub safe to use?"),
    .normal("The Mesh Trio kit only had two units in the box."),
    .normal("When will my order ship? It has said 'processing' since {weekday}."),
    .low("no tracking number on my confirmation email"),
    .normal("The router arrived without a power adapter."),
    .normal("{courier} lists my parcel as 'returned to sender'. I was home all day!"),
    .high("I need the replacement hub before {weekday}. I work from home and the old one is dead."),
    .low("Do you deliver to PO boxes?"),
    .high("Parcel {order} shows as delivered in {city}. I live in {city2}."),
    .normal("wrong item sent. need the right one"),
    .normal("The seal on the box was already broken when it arrived and the unit inside looks used."),
    .low("How do I send back the old router? The returns bag you mentioned never came."),
    .normal("Your courier threw the parcel over the gate and the casing is cracked. Photo attached."),
    .low("I got two of the {kit} but only ordered one. Do you want the extra one back?"),
    .high("Bit of a saga here. I ordered the {kit} on {date} and the confirmation said three to five working days. Tracking said it was with {courier}, then 'delayed at depot', then nothing for a week. {courier} say they haven't got it and I should ask the sender. I'm switching to you this week and my old provider cuts me off on {weekday}. Could you either find it or send another one?"),
    .normal("missing parcel {order} pls help"),
    .low("Can I collect the router from a depot instead of waiting in for delivery?"),
    .normal("Complaint about your courier: the driver left the {kit} on the pavement outside a block of flats."),
], twoTopic: [
    // Two topics: the parcel is the problem to solve.
    .normal("The {kit} finally arrived but it's the wrong model, so I can't set up the mesh I paid for. Please send the right one."),
    .high("If the router doesn't turn up by Friday I'll cancel the whole order. Order {order}, still no tracking."),
    .normal("Charged {amount} for a replacement hub that never arrived. Where has it gone?"),
    .high("My new router came damaged and I go live tomorrow. Can you courier a replacement overnight?"),
    .normal("Still waiting for the {kit}, and I see I was charged {amount} postage on a 'free delivery' order. Where is it?"),
])

let cancellationTemplates = TemplateSet(single: [
    .normal("I want to cancel my contract."),
    .normal("cancel pls"),
    .low("My contract ends on {date}. I don't want to renew, please confirm the end date."),
    .normal("We're moving to {country} in {month}. How do I cancel and what happens to the router?"),
    .low("I'm switching to another provider. What's the notice period?"),
    .low("How much would it cost to leave early? I'm {months} months into an 18 month contract."),
    .normal("Please cancel my broadband from {date}. Account {acct}."),
    .normal("My mum has moved into a care home and won't need the broadband any more. How do we close her account?"),
    .normal("I've had enough. Cancel everything."),
    .low("Moving in with my partner, who already has internet, so I need to end mine. When's the earliest I can leave without a fee?"),
    .normal("My father passed away last month and I need to close his account. I have the death certificate."),
    .high("I'd like to cancel within the cooling-off period. I only signed up on {date}."),
    .low("What do I need to send back when I cancel? I have the hub and two mesh units."),
    .low("Please don't auto-renew my contract. I'll be leaving at the end of the term."),
    .low("Do I have to phone to cancel or can I do it by email? I'm hard of hearing."),
    .high("Leaving the country for good on {date}. I need everything shut down before then."),
    .normal("I've found a cheaper deal elsewhere. Please treat this as my notice to cancel."),
    .low("want to end my contract when it runs out in {month}, what do i need to do"),
    .normal("The buyer of my flat will arrange their own broadband. Please close my account from completion day, {date}."),
    .normal("Your price rise is the last straw. I want to leave without a fee, which I understand the contract allows after a mid-term rise."),
    .normal("Slightly awkward one. I signed up about {months} months ago and the service has honestly been fine, but I've taken a job in {country} and will be renting the house out. I don't think the tenants will want to take over the contract. Can I cancel early, and if so what would the fee be? I'd also like to know how to return the {kit}."),
    .normal("Please close account {acct} at the end of this billing month."),
    .normal("End contract."),
    .normal("Student house here, we all move out on {date}. How do we cancel?"),
], twoTopic: [
    // Two topics: leaving is the request.
    .normal("The internet has dropped out four times this month alone. I'm done. Please cancel my contract without a fee."),
    .normal("I want to cancel. You've overcharged me twice this year and I can't be bothered to keep checking every bill."),
    .normal("Cancel my account please, and delete my details afterwards."),
    .low("If I cancel now, do I get back the part of the month I've already paid for?"),
    .normal("Unless you can match the {amount} a month another provider has offered me, I'd like to cancel."),
    .normal("Can't log in to cancel online so I'm doing it here. Please end my contract on {date}."),
])

let planChangeTemplates = TemplateSet(single: [
    .low("Can I upgrade to {plan}?"),
    .low("How much is {plan2} compared to my {plan}?"),
    .normal("I'd like to downgrade to the cheapest plan, money is tight at the moment."),
    .low("Add {addon} to my account please."),
    .low("What's the price of {plan} for existing customers? The website only shows new customer deals."),
    .low("We've got three teenagers gaming now. Is {plan} enough or should we go faster?"),
    .low("Remove {addon}, I never use it."),
    .normal("Is there a social tariff? I've just started receiving benefits."),
    .normal("Upgrade to gigabit please, I'm working from home full time now."),
    .low("Can I switch to a 12 month contract instead of 24?"),
    .low("If I move up to {plan} mid-contract, does that restart my contract?"),
    .low("Does {plan} include a static IP or is that extra?"),
    .low("I'd like to add a landline to my broadband. How much would that be?"),
    .normal("Drop me down to {plan}, I'm paying for speed I don't use."),
    .low("Do you have a business plan for a home office? I need better upload speed."),
    .normal("Is {plan} available at my address in {city}? The checker says yes but the order page says no."),
    .normal("My neighbour pays {amount2} for the same speed as me and I pay {amount}. Can I go on their deal?"),
    .low("What would my monthly bill be if I added {addon} and {addon2}?"),
    .low("need faster internet, what are my options"),
    .low("Can I pause {addon} for the summer while we're away and restart it in September?"),
    .low("I've been on {plan} for about {years} years and it's been fine, but now two of us work from home, the TV streams in 4K and there are more devices than I can count. I've seen {plan2} advertised and wonder if it's actually worth it, or whether a mesh kit would make more difference. What would the monthly cost be, and would it change my contract end date?"),
    .normal("Please upgrade me to {plan} from the next bill. Happy to recontract."),
    .low("Want the TV package too. How much extra?"),
    .normal("Can I move my plan to my new address in {city} on {date}?"),
    .low("Is the {amount} price for {plan} fixed for the whole contract or does it go up in April?"),
], twoTopic: [
    // Two topics: the plan is what they want changed.
    .normal("Thinking of leaving unless there's a cheaper plan. What's the lowest you can do for {plan}?"),
    .low("My bill keeps going up. Is there a cheaper plan I could move to?"),
    .normal("The mesh kit didn't help, the speed is just too slow on {plan}. Can I upgrade to {plan2}?"),
    .low("Speeds are fine but I'd like to add {addon}. Can you confirm my new monthly price in writing?"),
    .normal("Upgrade me to {plan2} as soon as possible, the current speed can't cope with video calls."),
])

let technicalSetupTemplates = TemplateSet(single: [
    .low("How do I set up port forwarding on the {kit}? I need port {port} open for a game server."),
    .normal("New router arrived. Which cable goes where?"),
    .normal("The mesh satellites won't pair with the hub. The light just keeps flashing blue."),
    .low("How do I change my Wi-Fi name and password?"),
    .low("Can I use my own router instead of the {kit}? What settings do I need?"),
    .normal("Setting up the {kit} for the first time and the app is stuck on 'searching for hub'."),
    .low("How do I turn off the 5GHz band? My old printer only connects on 2.4GHz."),
    .low("Where's the admin password for the hub? The sticker has worn off."),
    .high("Go-live day today. I've plugged everything in but the hub has been flashing white for an hour."),
    .low("Can I put a mesh unit in the garden office, about 15 m from the house?"),
    .low("How do I set up a guest network?"),
    .low("My doorbell camera won't connect to the new Wi-Fi. Does the hub have a WPA2-only mode?"),
    .low("need a fixed local IP for my cctv recorder, how?"),
    .low("Which DNS servers does the {kit} use, and can I change them?"),
    .normal("Ethernet port 2 on the hub doesn't seem to work."),
    .low("Parental controls: how do I block certain sites on the kids' devices?"),
    .normal("Mesh Trio is set up but the upstairs unit keeps dropping back to orange."),
    .low("Is there a way to put the hub in bridge mode so I can use my own mesh system?"),
    .normal("ipv6 not working on the new router, some sites wont load"),
    .high("My work VPN won't connect through the new hub but works fine on my phone's hotspot. I start at 9."),
    .low("How do I update the firmware on the {kit}?"),
    .normal("Set up the hub, internet light is green, but none of my devices can see the network."),
    .low("I'm not very technical, so apologies if this is obvious. The engineer connected the fibre yesterday and left the hub with me. It seems to work for my phone, but the {kit} that came separately has little white boxes and I can't work out where they go or how to make them talk to the main one. The leaflet mentions an app I can't find. Could someone talk me through it or send simple instructions?"),
    .low("UPnP on or off? My console keeps saying strict NAT."),
    .low("The Wi-Fi doesn't reach the back bedroom. Where should I put the booster?"),
    .low("How do I connect my smart TV with a cable instead of Wi-Fi?"),
], twoTopic: [
    // Two topics: configuring the equipment is the request.
    .normal("The {kit} arrived today (thanks for the quick delivery!) but I can't get the second unit to pair. What am I doing wrong?"),
    .normal("Since I set up the mesh my speed has halved. Is it the way I've set it up or the line?"),
    .normal("I need to set up port forwarding but can't get into the hub's admin page, the default password doesn't work."),
    .low("Getting the hub ready for the {plan2} upgrade: do I need a new router or just a restart?"),
])

let privacyDataTemplates = TemplateSet(single: [
    .normal("Please send me a copy of all the personal data you hold about me. This is a subject access request."),
    .normal("I want my data deleted."),
    .normal("Stop sending me marketing emails. I've unsubscribed three times."),
    .low("Do you share my browsing data with advertisers?"),
    .normal("Under GDPR I am asking you to erase all my personal data. Account {acct}, email {email}."),
    .high("Why did a company I've never heard of ring me and know I'm a Larkspur customer?"),
    .low("How long do you keep recordings of calls?"),
    .low("Remove me from your mailing list."),
    .high("I can see someone else's bill in my account: {full}, with their home address. That's a data breach."),
    .low("Please opt me out of all marketing: email, post, phone and text."),
    .low("Can I see the notes your staff have written on my account?"),
    .low("What does Larkspur do with the data from the hub? Do you log which websites I visit?"),
    .high("My ex still knows my account details and I'm worried my new address is visible. Please make sure it isn't shared with anyone."),
    .normal("subject access request, account {acct}"),
    .high("You sent my invoice to a stranger's email, {email}. Who else has my details?"),
    .normal("Do you sell customer data to third parties? I'd like a straight answer."),
    .normal("It's been {days} days since my data request and I've heard nothing. You're supposed to reply within a month."),
    .low("Please stop the 'partner offers' texts. I never agreed to them."),
    .low("I'd like to withdraw consent for my usage data being used for 'service improvement'."),
    .low("Who is your data protection officer and how do I contact them?"),
    .low("Please correct the spelling of my name on your records, it's {full}."),
    .normal("I recently got a letter from a company offering 'exclusive deals for Larkspur customers'. I've never given anyone permission to share my details, and the letter used a spelling of my name that only appears on my Larkspur account. I'd like to know whether you've passed my details on, to whom, and I want it stopped immediately. Please also confirm in writing what data you hold on me."),
    .low("Does the parental controls feature store my kids' browsing history anywhere?"),
    .low("unsubscribe"),
    .normal("Can you confirm you've deleted the recordings of my calls, as I asked in {month}?"),
], twoTopic: [
    // Two topics: what happens to the personal data is the request.
    .normal("I've cancelled my contract. Now please delete every bit of my data you don't have to keep."),
    .normal("Someone from your company phoned me about upgrading to {plan}. How did they get my work number? I only gave it for billing."),
    .normal("I'm closing my late mother's account and want all her personal information erased once the final bill is paid."),
    .low("Why is my marketing preference set to 'yes' when I ticked no at signup? And stop the calls."),
    .high("Someone accessed my account last week. I'm back in now, and I want a log of what data they viewed or downloaded."),
])

let legalDisputeTemplates = TemplateSet(single: [
    .high("I have filed a chargeback with my bank for the {amount} you took without permission."),
    .high("If this isn't resolved within 14 days I will issue a claim in the small claims court."),
    .high("This is a letter before action. You have breached our contract by failing to provide the service I paid for."),
    .high("My solicitor will be in touch about the early termination fee of {amount}."),
    .normal("I am making a formal complaint. You are in breach of contract: {plan} has never delivered the minimum guaranteed speed of {mbps} Mbps."),
    .high("A debt collection agency, {collector}, is chasing me for {amount} on an account I closed in {month}. I dispute this debt entirely."),
    .high("I'll see you in court."),
    .high("Please pass this to your legal department. Our client, {full}, disputes the sum of {amount} said to be owed. {solicitors}"),
    .normal("I intend to report Larkspur to the regulator over the way my complaint has been handled."),
    .normal("Formal complaint {case}. It's been eight weeks, so I'm now entitled to take this to the ombudsman, and I will."),
    .high("Your letter threatens my credit file over a debt I don't owe. I will be taking legal advice."),
    .normal("Consider this notice that I dispute invoice {invoice} and will not pay it. Any collection activity will be challenged."),
    .high("Received a county court claim form about a Larkspur account. I have never had an account with you."),
    // Escalations worded without legal vocabulary.
    .high("I have raised this with my bank as an unauthorised transaction."),
    .normal("I will be taking this to the ombudsman."),
    .normal("Please send me a deadlock letter so I can escalate this."),
    .normal("My card provider has opened a dispute for the {amount} charge on {date}. They'll be in touch with you."),
    .high("I've reversed the direct debit payment of {amount} through my bank. Don't take it again."),
    .normal("My bank has given me reference {case} for the disputed payment. Expect to hear from them."),
    .normal("Eight weeks have passed since my complaint. I'm escalating it to the independent adjudicator."),
    .normal("I have a record of every call. If you keep pursuing this 'debt' I'll be passing all of it on."),
    .high("You passed a debt to {collector} that I told you in writing I dispute. All contact stops until this is resolved."),
    .normal("I've reported the way this contract was sold to me to trading standards."),
    .normal("Your terms say I can leave without a fee after a mid-contract price rise. You charged me {amount} anyway. I'll be taking this outside Larkspur."),
    .high("I didn't authorise the {amount} payment on {date}. My bank has refunded me and is recovering it from you."),
], twoTopic: [
    // Two topics: the external escalation decides the queue.
    .high("Bill wrong for the fourth month running. I've had enough and asked my bank to claw back the last three payments."),
    .high("You promised me a refund of {amount} in {month}. I've given you every chance. The next letter you get will be from a solicitor."),
    .normal("I want to leave without the exit fee because of the constant outages. If you insist on the {amount} I'll put it before the ombudsman."),
    .normal("The {kit} never arrived, you still charged me and your team won't help. I've made a claim with my credit card company."),
    .high("Final warning: restore my service or refund the {amount}, or I will take formal action with no further notice."),
    .normal("My bank asked me to contact you before they go ahead with the chargeback for {amount}. Can you refund it directly instead?"),
    .normal("Formal complaint about case {case}. Your engineer damaged my hallway floor on {date}. I expect {amount} in compensation or I'll pursue it."),
    .high("To be clear about where things stand: I signed up for {plan} on the basis of a guaranteed minimum speed, which has not been met on a single day since installation. I have raised it {times} times and have a reference for each call. I am no longer asking for technical help. Release me from the contract without charge and refund the {amount} I've paid, within 14 days, or I will file a claim without further notice."),
    .high("I am suing you for the work I lost during your {days} day outage."),
])

// MARK: - Slots

let firstNames = [
    "Priya", "Tom", "Marta", "Callum", "Aisha", "Owen", "Niamh", "Tomasz", "Grace", "Dev", "Siobhan", "Rhys",
    "Fatima", "Ben", "Chloe", "Kwame", "Ewa", "Hamish", "Leila", "Joe", "Ananya", "Yusuf", "Freya", "Idris",
]
let lastNames = [
    "Shah", "Nowak", "Byrne", "Okafor", "Hughes", "Patel", "Campbell", "Kowalski", "Ahmed", "Fletcher", "Doyle",
    "Mensah", "Reid", "Lindqvist", "Price", "Mistry", "Quayle", "Abernethy", "Tran", "Oduya",
]
/// Slowest first: `{plan2}` is drawn faster than `{plan}`.
let plans = [
    "Fibre Essentials 75", "Larkspur Fibre 150", "Larkspur Fibre 300", "Larkspur Fibre 500", "Larkspur Fibre 900",
    "Larkspur Gigabit",
]
let months = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December",
]

/// A fresh value for the placeholder `{name}`; an unknown name is a template typo, so it stops the script.
func drawSlot(_ name: String, _ rng: inout SplitMix64) -> String {
    switch name {
    case "first": return rng.pick(firstNames)
    case "full": return rng.pick(firstNames) + " " + rng.pick(lastNames)
    case "email":
        let first = rng.pick(firstNames).lowercased(), last = rng.pick(lastNames).lowercased()
        let number = rng.int(1...99)
        let local = rng.pick([first + "." + last, first + last.prefix(1), first + "_" + last, "\(first)\(number)"])
        return local + "@" + rng.pick(["example.com", "example.org", "example.net"])
    case "city":
        return rng.pick([
            "Leeds", "Bristol", "Norwich", "Cardiff", "Glasgow", "Sheffield", "Exeter", "Leicester", "Belfast", "York",
            "Brighton", "Nottingham", "Swansea", "Aberdeen", "Derby", "Plymouth",
        ])
    case "plan": return rng.pick(plans)
    case "kit":
        return rng.pick([
            "Mesh Trio kit", "Mesh Duo kit", "Larkspur Hub 3", "Larkspur Hub 4", "Mesh Solo add-on unit",
            "Larkspur Wi-Fi Booster",
        ])
    case "addon":
        return rng.pick([
            "TV Essentials", "TV Plus", "Anytime Calls", "World Calls", "the Static IP add-on", "Sports Pass",
            "Cloud Backup",
        ])
    case "amount":
        // Mostly pounds and pence, sometimes a round figure as people often write it.
        let pounds = rng.int(4...240)
        if rng.chance(0.15) { return "£\(pounds)" }
        let anyPence = rng.below(100)
        let pence = rng.pick([0, 99, 50, 49, 95, 20, anyPence])
        return "£\(pounds)." + (pence < 10 ? "0\(pence)" : "\(pence)")
    case "order": return "LK-\(rng.int(10000...99999))"
    case "invoice": return "INV-\(rng.pick([2025, 2026]))-" + zeroPadded(rng.below(100_000), width: 5)
    case "case": return "CR-" + zeroPadded(rng.below(1_000_000), width: 6)
    case "acct": return "LH" + zeroPadded(rng.below(100_000_000), width: 8)
    case "last4": return zeroPadded(rng.below(10000), width: 4)
    case "date":
        let day = rng.int(1...28), month = rng.pick(months)
        return rng.pick(["\(day) \(month)", ordinal(day) + " " + month, "the " + ordinal(day)])
    case "weekday": return rng.pick(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"])
    case "month": return rng.pick(months)
    case "time": return rng.pick(["6am", "7am", "7:30", "8am", "8:15", "9am", "half 6"])
    case "days": return "\(rng.int(2...21))"
    case "hours": return "\(rng.int(3...60))"
    case "months": return "\(rng.int(2...20))"
    case "years": return "\(rng.int(1...14))"
    case "times": return rng.pick(["three", "four", "five", "six", "seven"])
    case "mbps": return "\(rng.int(1...45))"
    case "port": return rng.pick(["25565", "3074", "8080", "32400", "27015", "51820"])
    case "courier": return rng.pick(["Parcelwing", "Kestrel Couriers", "Hopbox Delivery"])
    case "country":
        return rng.pick(["Portugal", "Canada", "Australia", "Spain", "New Zealand", "Germany", "the Netherlands"])
    case "collector":
        return rng.pick(["Calloway Finch Recoveries", "Meridale Collections", "Oakhurst Credit Management"])
    case "solicitors": return rng.pick(["Ashcombe Vale Solicitors", "Penhallow & Reyes LLP", "Quillfield Legal"])
    case "relative": return rng.pick(["mum", "dad", "gran", "grandad", "husband", "wife", "partner"])
    default: fatalError("unknown slot {\(name)}")
    }
}

func zeroPadded(_ n: Int, width: Int) -> String {
    let digits = String(n)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
}

func ordinal(_ day: Int) -> String {
    let suffix = (11...13).contains(day % 100) ? "th" : [1: "st", 2: "nd", 3: "rd"][day % 10] ?? "th"
    return "\(day)\(suffix)"
}

/// Fills `{slot}` placeholders, remembering values so a slot repeated within one message agrees with itself.
struct SlotFiller {
    private var values: [String: String] = [:]

    mutating func fill(_ template: String, _ rng: inout SplitMix64) -> String {
        var out = "", name = "", inSlot = false
        for ch in template {
            switch ch {
            case "{": inSlot = true
            case "}":
                out += value(name, &rng)
                name = ""
                inSlot = false
            default:
                if inSlot { name.append(ch) } else { out.append(ch) }
            }
        }
        return out
    }

    /// The slot's value in this message; `{x2}` draws from the pool of `{x}` until it differs from `{x}`.
    private mutating func value(_ name: String, _ rng: inout SplitMix64) -> String {
        if let known = values[name] { return known }
        let base = name.hasSuffix("2") ? String(name.dropLast()) : name
        if base == "amount" || base == "plan" {
            drawOrderedPair(base, &rng)
            return values[name]!
        }
        var drawn = drawSlot(base, &rng)
        if base != name, let first = values[base] {
            while drawn == first { drawn = drawSlot(base, &rng) }
        }
        values[name] = drawn
        return drawn
    }

    /// Sums and plans are drawn in pairs so templates read the right way round wherever the two slots appear:
    /// `{amount2}` is the smaller sum ("charged {amount} instead of {amount2}"), `{plan2}` the faster plan
    /// ("upgrade from {plan} to {plan2}").
    private mutating func drawOrderedPair(_ base: String, _ rng: inout SplitMix64) {
        let size: (String) -> Double = base == "amount"
            ? { Double($0.dropFirst())! }  // "£42.99" -> 42.99
            : { Double(plans.firstIndex(of: $0)!) }
        let first = drawSlot(base, &rng)
        var second = drawSlot(base, &rng)
        while size(second) == size(first) { second = drawSlot(base, &rng) }
        let (smaller, larger) = size(first) < size(second) ? (first, second) : (second, first)
        values[base] = base == "amount" ? larger : smaller
        values[base + "2"] = base == "amount" ? smaller : larger
    }
}

// MARK: - Style

enum Register {
    case formal, neutral, casual

    var openers: [String] {
        switch self {
        case .formal:
            return [
                "Dear Sir or Madam,", "To whom it may concern,", "Dear Larkspur team,", "Good afternoon,", "Good morning,",
            ]
        case .neutral: return ["Hi,", "Hello,", "Hello team,", "Hi there,", "Hi Larkspur,", "Morning,", "Hi team,"]
        case .casual: return ["hey", "hiya", "hi", "hey guys", "yo"]
        }
    }

    var closers: [String] {
        switch self {
        case .formal:
            return [
                "Kind regards,\n{full}", "Yours faithfully,\n{full}", "Regards, {full}", "I look forward to your reply.",
            ]
        case .neutral:
            return [
                "Thanks", "Thanks, {first}", "Regards, {first}", "Many thanks.", "Cheers, {first}", "Thank you.",
                "Thanks in advance!",
            ]
        case .casual: return ["thanks", "thx", "ta", "cheers", "ty"]
        }
    }
}

/// Context that says nothing about the queue, so length and detail do not give the label away.
let leadIns = [
    "I've been a customer for {years} years.", "Sorry if this is the wrong department.",
    "I tried the live chat but it kept timing out.", "This is my second message about this.",
    "I'm writing for my {relative}, who is the account holder.", "Account email is {email}.",
    "Account number {acct}.", "I'm in {city} if that matters.",
]
let afterthoughts = [
    "Best to reach me by email, I work shifts.", "I'm home after 5pm if you need to call.",
    "Please reply by email rather than phone.", "My account number is {acct}.",
]

/// Whole phrases first, then single words; pairs rather than a dictionary so the order is fixed.
let textSpeakPhrases = [("as soon as possible", "asap"), ("to be honest", "tbh"), ("by the way", "btw")]
let textSpeakWords = [
    ("please", "pls"), ("you", "u"), ("your", "ur"), ("you're", "ur"), ("thanks", "thx"), ("because", "cos"),
    ("tomorrow", "tmrw"), ("are", "r"), ("people", "ppl"), ("message", "msg"), ("about", "abt"), ("really", "rly"),
]

func textSpeak(_ text: String, _ rng: inout SplitMix64) -> String {
    var text = text
    for (phrase, short) in textSpeakPhrases { text = text.replacing(phrase, with: short) }
    var out = "", word = ""
    func flush(_ rng: inout SplitMix64) {
        if let short = textSpeakWords.first(where: { $0.0 == word.lowercased() })?.1, rng.chance(0.7) {
            out += short
        } else {
            out += word
        }
        word = ""
    }
    for ch in text {
        if ch.isLetter || ch == "'" {
            word.append(ch)
        } else {
            flush(&rng)
            out.append(ch)
        }
    }
    flush(&rng)
    return out
}

/// Drops apostrophes, commas and sentence-ending full stops, keeping those inside amounts, e-mails and references.
func droppingPunctuation(_ text: String) -> String {
    let chars = Array(text)
    var out = ""
    for (i, ch) in chars.enumerated() {
        let prev: Character = i > 0 ? chars[i - 1] : " ", next: Character = i + 1 < chars.count ? chars[i + 1] : " "
        switch ch {
        case "'": continue
        case "," where !(prev.isNumber && next.isNumber): continue
        case "." where next.isWhitespace: continue
        default: out.append(ch)
        }
    }
    return out
}

/// Upper-cases one sentence, the way an annoyed writer stresses the part they care about.
func shoutingOneSentence(_ text: String, _ rng: inout SplitMix64) -> String {
    var sentences: [String] = [], current = ""
    for ch in text {
        if ch == " ", let last = current.last, ".!?".contains(last) {
            sentences.append(current)
            current = ""
        }
        current.append(ch)
    }
    sentences.append(current)
    let loud = rng.below(sentences.count)
    sentences[loud] = sentences[loud].uppercased()
    return sentences.joined()
}

/// One or two slips inside words: two letters swapped, one dropped, or one doubled.
func withTypos(_ text: String, _ rng: inout SplitMix64) -> String {
    var chars = Array(text)
    for _ in 0..<(rng.chance(0.3) ? 2 : 1) {
        let inWord = chars.indices.filter { i in
            i > 0 && i + 1 < chars.count && chars[i].isASCII && chars[i].isLowercase
                && chars[i - 1].isLetter && chars[i + 1].isLetter
        }
        guard !inWord.isEmpty else { break }
        let i = rng.pick(inWord)
        switch rng.below(3) {
        case 0: chars.swapAt(i, i + 1)
        case 1: chars.remove(at: i)
        default: chars.insert(chars[i], at: i)
        }
    }
    return String(chars)
}

// MARK: - Messages

struct Row {
    let text: String
    let queue: Queue
    let urgency: Urgency
}

func makeMessage(_ queue: Queue, _ rng: inout SplitMix64) -> Row {
    let templates = queue.templates
    let template = rng.pick(rng.chance(0.1) ? templates.twoTopic : templates.single)
    // Urgency follows the content, with some disagreement as between human labellers; a legal dispute is never low.
    var urgency = template.urgency
    if rng.chance(0.12) { urgency = urgency.nudged(up: rng.chance(0.5)) }
    if queue == .legalDispute, urgency == .low { urgency = .normal }

    var slots = SlotFiller()
    var body = template.text
    if rng.chance(0.08) { body = rng.pick(leadIns) + " " + body }
    if rng.chance(0.06) { body += " " + rng.pick(afterthoughts) }
    body = slots.fill(body, &rng)

    let roll = rng.below(100)
    let register: Register = template.isCasual ? (roll < 60 ? .casual : .neutral)
        : roll < 20 ? .formal : roll < 78 ? .neutral : .casual
    if register == .neutral, rng.chance(urgency == .high ? 0.2 : 0.03) { body = shoutingOneSentence(body, &rng) }

    // Formal mail puts greetings on their own lines; chat-style messages run them into the text.
    let separator = rng.chance(register == .formal ? 0.6 : 0.06) ? "\n" : " "
    var text = body
    if rng.chance(register == .formal ? 0.85 : 0.45) { text = rng.pick(register.openers) + separator + text }
    if rng.chance(register == .formal ? 0.8 : 0.35) { text += separator + slots.fill(rng.pick(register.closers), &rng) }

    if register == .casual {
        if rng.chance(0.4) { text = textSpeak(text, &rng) }
        if rng.chance(0.4) { text = droppingPunctuation(text) }
        if rng.chance(0.5) { text = text.lowercased() }
    } else if register == .neutral, rng.chance(0.06) {
        text = droppingPunctuation(text)
    }
    if rng.chance(register == .formal ? 0.08 : 0.17) { text = withTypos(text, &rng) }
    if register != .formal, rng.chance(0.05) { text += " " + rng.pick(urgency.emoji) }
    return Row(text: text, queue: queue, urgency: urgency)
}

/// Letters and digits only, lower-cased: messages differing just in case or punctuation count as duplicates, so a
/// train/test split cannot hold the same message twice.
func dedupeKey(_ text: String) -> String {
    text.lowercased().filter { $0.isLetter || $0.isNumber }
}

func csvField(_ value: String) -> String {
    // Decided on UTF-8 bytes: a comma, quote or line break can begin a grapheme cluster with what follows it.
    let special: Set<UInt8> = [0x2C, 0x22, 0x0A, 0x0D]
    guard value.utf8.contains(where: special.contains) else { return value }
    return String(decoding: [0x22] + value.utf8.flatMap { $0 == 0x22 ? [0x22, 0x22] : [$0] } + [0x22], as: UTF8.self)
}

// MARK: - Main

let environment = ProcessInfo.processInfo.environment
guard let scale = Int(environment["SUPPORT_SCALE"] ?? "1"), scale >= 1 else { fatalError("SUPPORT_SCALE must be a whole number ≥ 1") }
let seedText = environment["SUPPORT_SEED"]
guard seedText == nil || UInt64(seedText!) != nil else { fatalError("SUPPORT_SEED must be a whole number") }
var rng = SplitMix64(seed: seedText.flatMap { UInt64($0) } ?? 0x1A4B_5B0E)
var seen = Set<String>()
var rows: [Row] = []
for queue in Queue.allCases {
    var made = 0, attempts = 0
    while made < queue.target * scale {
        attempts += 1
        precondition(attempts <= queue.target * scale * 20, "\(queue.rawValue): too few distinct messages; add templates")
        let row = makeMessage(queue, &rng)
        if seen.insert(dedupeKey(row.text)).inserted {
            rows.append(row)
            made += 1
        }
    }
}
rng.shuffle(&rows)

var csv = "text,queue,urgency\n"
for row in rows { csv += csvField(row.text) + "," + row.queue.rawValue + "," + row.urgency.rawValue + "\n" }
print(csv, terminator: "")
