# QR Bridge pages, English. Keys are listed in src/i18n/mod.rs (Text); every language has all of them.

## Every page
skip-link = Skip to content
footer-secured = Secured with passkeys
language = Language
not-found-title = Page not found
not-found-message = There is nothing at this address.
not-found-home = Go to the sign-in page
error-title = Something went wrong

## The desktop's sign-in page
desk-preparing = Preparing your sign-in code…
desk-no-app-title = No such app
desk-no-app-message = This sign-in page does not exist. Check the address.
desk-qr-label = QR code to scan with your phone
desk-expires = Code expires in { $time }
desk-title = Sign in with your phone
desk-step-camera = Open the camera on the phone that has your passkey.
desk-step-approve = Scan this code and approve with your fingerprint, face or PIN.
desk-scanned = Scanned — check your phone
desk-match = Scanned — on your phone, tap this number:
desk-waiting = Waiting for your phone
desk-link = Can't scan? Open this link on your phone:
cancel = Cancel
desk-signed-in-title = You're signed in
desk-signed-in-as = Signed in as { $user }
desk-token = Session token { $token } — kept by the server, never shown whole.
desk-sign-out = Sign out
desk-denied-title = Sign-in declined
desk-denied-message = The request was declined on the phone.
desk-cancelled-title = Sign-in cancelled
desk-cancelled-message = You cancelled this sign-in.
desk-expired-title = This code has expired
desk-expired-message = Codes are valid for a few minutes. Get a new one to try again.
desk-new-code = Get a new code
desk-too-many = Too many new codes from here. Wait a minute and try again.

## The phone's approval page
phone-loading = Loading the request…
phone-close = You can close this window.
phone-eyebrow = Sign-in request
phone-title = { $app } wants to sign you in
phone-asking = Who is asking
phone-device = Device
phone-where = Where
phone-network = Network
phone-requested = Requested
phone-warning = Did not start this on your computer? Decline it.
network-same = Same as this phone
network-different = Not this phone's network
elsewhere-title = This request comes from another network
elsewhere-text = The computer asking is not on this phone's network. Unless you are signing in on a computer in front of you right now, decline: someone may be trying to get into your account.
place = { $city }, { $country }
numbers-legend = Tap the number your computer shows
numbers-none = No number on your computer? Decline.
getting-ready = Getting ready…
approve-create = Create passkey and approve
approve = Approve with passkey
decline = Decline
working-create = Creating your passkey…
working-use = Waiting for your passkey…
working-prepare = Preparing…
working-decline = Declining…
working-check = Checking…
working-disown = Signing that computer out…
no-passkey = No passkey was used.
no-passkey-create = If this phone has no passkey for { $app } yet, create one now: it takes a moment and signs you in.
no-passkey-other = Use a phone that has a passkey for this account, or try again.
create-passkey = Create a passkey
try-again = Try again
done = Done. You can close this window.
done-desktop = You are being signed in on your computer.
allowed = What you allowed
allowed-app = App
allowed-at = Approved
approved-with-new = Approved with the passkey you just created.
approved-with-dated = Approved with your passkey created on { $date }.
not-me = This wasn't me
disowned-title = Signed out
disowned-text = That computer's sign-in was revoked: it can no longer use it. Nothing else is needed from you.
declined = Declined. You can close this window.
declined-nobody = Nobody was signed in.
ceremony-unsupported = This browser cannot use passkeys here.
ceremony-failed = The passkey prompt failed. Try again.
unknown-browser = An unknown browser
browser-on = { $browser } on { $os }
requested-ago =
    { $minutes ->
        [0] just now
        [one] a minute ago
       *[other] { $minutes } minutes ago
    }
retry-ours = That did not go through on our side. Try again.
answer-unreadable = The passkey's answer could not be read. Try again.

## Why a request cannot go on
scan-again = Go back to your computer and scan a new code.
not-verified-advice = That passkey could not be verified. Try again.
generic-title = Something went wrong
generic-advice = Try again in a moment.
limited-title = Too many attempts
limited-advice = Wait a minute, then try again.
invalid-code-title = This code is not valid
expired-title = This code has expired
declined-title = Declined
declined-advice = The sign-in was declined on the phone.
cancelled-title = Cancelled on the computer
cancelled-advice = The sign-in was cancelled. Start again on your computer.
already-approved-title = Already approved
already-approved-advice = This sign-in was already approved.
already-declined-title = Already declined
already-declined-advice = This sign-in was declined.
pick-first-title = Pick the number first
pick-first-advice = Tap the number your computer shows, then approve.
cant-go-on-title = This request can't go on
not-verified-title = Not verified
unknown-passkey-title = Unknown passkey
unknown-passkey-advice = This passkey is not registered here. Use another, or create one.
no-signup-title = You can't create an account here
no-signup-advice = Sign in with a passkey you already have for this app.
account-exists-title = This account already exists
account-exists-advice = Sign in with its passkey instead, or ask the app to add this one.
other-device-title = This request is open on another device
other-device-advice = Only the device that first opened it can approve or decline it.
wrong-pin-title = Wrong PIN
wrong-pin-advice = Check the PIN on the other device and try again.
pin-locked-title = Too many wrong PINs
pin-locked-advice = Start again on the other device for a new PIN.
bad-link-title = This link is not valid
other-browser-title = Open this on the browser it was meant for
already-creates-title = This request already creates a passkey
already-creates-advice = Go back and approve it as it is.
account-gone-title = This account no longer exists
account-gone-advice = Go back to your computer and start again.
unreachable-title = We can't reach our service right now
unreachable-advice = We can't reach our service right now. Wait a moment, then try again.
ours-title = Something went wrong on our side
ours-advice = Something went wrong on our side. Try again.
wrong-number-title = Wrong number: declined
wrong-number-advice = For your safety nobody was signed in. If it was you, start again on your computer.
