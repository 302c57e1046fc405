# QR-Bridge-Seiten, Deutsch.

## Alle Seiten
skip-link = Zum Inhalt springen
footer-secured = Geschützt mit Passkeys
language = Sprache
not-found-title = Seite nicht gefunden
not-found-message = Unter dieser Adresse gibt es nichts.
not-found-home = Zur Anmeldeseite
error-title = Etwas ist schiefgelaufen

## Die Anmeldeseite am Computer
desk-preparing = Ihr Anmeldecode wird vorbereitet…
desk-no-app-title = Diese App gibt es nicht
desk-no-app-message = Diese Anmeldeseite gibt es nicht. Prüfen Sie die Adresse.
desk-qr-label = QR-Code zum Scannen mit Ihrem Telefon
desk-expires = Der Code läuft ab in { $time }
desk-title = Mit dem Telefon anmelden
desk-step-camera = Öffnen Sie die Kamera des Telefons, auf dem Ihr Passkey ist.
desk-step-approve = Scannen Sie diesen Code und bestätigen Sie mit Fingerabdruck, Gesicht oder PIN.
desk-scanned = Gescannt — sehen Sie auf Ihr Telefon
desk-match = Gescannt — tippen Sie auf dem Telefon diese Zahl an:
desk-waiting = Warten auf Ihr Telefon
desk-link = Scannen klappt nicht? Öffnen Sie diesen Link auf Ihrem Telefon:
cancel = Abbrechen
desk-signed-in-title = Sie sind angemeldet
desk-signed-in-as = Angemeldet als { $user }
desk-token = Sitzungstoken { $token } — bleibt auf dem Server und wird nie ganz angezeigt.
desk-sign-out = Abmelden
desk-denied-title = Anmeldung abgelehnt
desk-denied-message = Die Anfrage wurde auf dem Telefon abgelehnt.
desk-cancelled-title = Anmeldung abgebrochen
desk-cancelled-message = Sie haben diese Anmeldung abgebrochen.
desk-expired-title = Dieser Code ist abgelaufen
desk-expired-message = Codes gelten einige Minuten. Holen Sie einen neuen, um es noch einmal zu versuchen.
desk-new-code = Neuen Code holen
desk-too-many = Zu viele neue Codes von hier. Warten Sie eine Minute und versuchen Sie es erneut.

## Die Bestätigungsseite auf dem Telefon
phone-loading = Anfrage wird geladen…
phone-close = Sie können dieses Fenster schließen.
phone-eyebrow = Anmeldeanfrage
phone-title = { $app } möchte Sie anmelden
phone-asking = Wer fragt
phone-device = Gerät
phone-where = Wo
phone-network = Netzwerk
phone-requested = Angefragt
phone-warning = Nicht an Ihrem Computer gestartet? Lehnen Sie ab.
network-same = Dasselbe wie dieses Telefon
network-different = Nicht das Netzwerk dieses Telefons
elsewhere-title = Diese Anfrage kommt aus einem anderen Netzwerk
elsewhere-text = Der anfragende Computer ist nicht im Netzwerk dieses Telefons. Wenn Sie sich nicht gerade an einem Computer vor Ihnen anmelden, lehnen Sie ab: Jemand versucht vielleicht, in Ihr Konto zu gelangen.
place = { $city }, { $country }
numbers-legend = Tippen Sie die Zahl an, die Ihr Computer zeigt
numbers-none = Ihr Computer zeigt keine Zahl? Lehnen Sie ab.
getting-ready = Wird vorbereitet…
approve-create = Passkey erstellen und bestätigen
approve = Mit Passkey bestätigen
decline = Ablehnen
working-create = Ihr Passkey wird erstellt…
working-use = Warten auf Ihren Passkey…
working-prepare = Wird vorbereitet…
working-decline = Wird abgelehnt…
working-check = Wird geprüft…
working-disown = Der Computer wird abgemeldet…
no-passkey = Es wurde kein Passkey verwendet.
no-passkey-create = Wenn dieses Telefon noch keinen Passkey für { $app } hat, erstellen Sie jetzt einen: Das dauert einen Moment und meldet Sie an.
no-passkey-other = Verwenden Sie ein Telefon mit einem Passkey für dieses Konto oder versuchen Sie es erneut.
create-passkey = Passkey erstellen
try-again = Erneut versuchen
done = Fertig. Sie können dieses Fenster schließen.
done-desktop = Sie werden an Ihrem Computer angemeldet.
allowed = Was Sie erlaubt haben
allowed-app = App
allowed-at = Bestätigt
approved-with-new = Bestätigt mit dem Passkey, den Sie gerade erstellt haben.
approved-with-dated = Bestätigt mit Ihrem Passkey vom { $date }.
not-me = Das war ich nicht
disowned-title = Abgemeldet
disowned-text = Die Anmeldung dieses Computers wurde widerrufen: Er kann sie nicht mehr nutzen. Sie müssen sonst nichts tun.
declined = Abgelehnt. Sie können dieses Fenster schließen.
declined-nobody = Niemand wurde angemeldet.
ceremony-unsupported = Dieser Browser kann hier keine Passkeys verwenden.
ceremony-failed = Die Passkey-Abfrage ist fehlgeschlagen. Versuchen Sie es erneut.
unknown-browser = Ein unbekannter Browser
browser-on = { $browser } auf { $os }
requested-ago =
    { $minutes ->
        [0] gerade eben
        [one] vor einer Minute
       *[other] vor { $minutes } Minuten
    }
retry-ours = Das hat auf unserer Seite nicht geklappt. Versuchen Sie es erneut.
answer-unreadable = Die Antwort des Passkeys konnte nicht gelesen werden. Versuchen Sie es erneut.

## Warum eine Anfrage nicht weitergehen kann
scan-again = Gehen Sie zurück zu Ihrem Computer und scannen Sie einen neuen Code.
not-verified-advice = Dieser Passkey konnte nicht geprüft werden. Versuchen Sie es erneut.
generic-title = Etwas ist schiefgelaufen
generic-advice = Versuchen Sie es gleich noch einmal.
limited-title = Zu viele Versuche
limited-advice = Warten Sie eine Minute und versuchen Sie es dann erneut.
invalid-code-title = Dieser Code ist ungültig
expired-title = Dieser Code ist abgelaufen
declined-title = Abgelehnt
declined-advice = Die Anmeldung wurde auf dem Telefon abgelehnt.
cancelled-title = Am Computer abgebrochen
cancelled-advice = Die Anmeldung wurde abgebrochen. Beginnen Sie an Ihrem Computer neu.
already-approved-title = Bereits bestätigt
already-approved-advice = Diese Anmeldung wurde bereits bestätigt.
already-declined-title = Bereits abgelehnt
already-declined-advice = Diese Anmeldung wurde abgelehnt.
pick-first-title = Zuerst die Zahl wählen
pick-first-advice = Tippen Sie die Zahl an, die Ihr Computer zeigt, und bestätigen Sie dann.
cant-go-on-title = Diese Anfrage kann nicht fortgesetzt werden
not-verified-title = Nicht geprüft
unknown-passkey-title = Unbekannter Passkey
unknown-passkey-advice = Dieser Passkey ist hier nicht registriert. Verwenden Sie einen anderen oder erstellen Sie einen.
no-signup-title = Hier können Sie kein Konto erstellen
no-signup-advice = Melden Sie sich mit einem Passkey an, den Sie für diese App schon haben.
account-exists-title = Dieses Konto gibt es bereits
account-exists-advice = Melden Sie sich mit seinem Passkey an oder bitten Sie die App, diesen hinzuzufügen.
other-device-title = Diese Anfrage ist auf einem anderen Gerät geöffnet
other-device-advice = Nur das Gerät, das sie zuerst geöffnet hat, kann sie bestätigen oder ablehnen.
wrong-pin-title = Falsche PIN
wrong-pin-advice = Prüfen Sie die PIN auf dem anderen Gerät und versuchen Sie es erneut.
pin-locked-title = Zu viele falsche PINs
pin-locked-advice = Beginnen Sie auf dem anderen Gerät neu, um eine neue PIN zu erhalten.
bad-link-title = Dieser Link ist ungültig
other-browser-title = Öffnen Sie dies in dem Browser, für den es gedacht war
already-creates-title = Diese Anfrage erstellt bereits einen Passkey
already-creates-advice = Gehen Sie zurück und bestätigen Sie sie so, wie sie ist.
account-gone-title = Dieses Konto gibt es nicht mehr
account-gone-advice = Gehen Sie zurück zu Ihrem Computer und beginnen Sie neu.
unreachable-title = Wir erreichen unseren Dienst gerade nicht
unreachable-advice = Wir erreichen unseren Dienst gerade nicht. Warten Sie einen Moment und versuchen Sie es dann erneut.
ours-title = Bei uns ist etwas schiefgelaufen
ours-advice = Bei uns ist etwas schiefgelaufen. Versuchen Sie es erneut.
wrong-number-title = Falsche Zahl: abgelehnt
wrong-number-advice = Zu Ihrer Sicherheit wurde niemand angemeldet. Wenn Sie es waren, beginnen Sie an Ihrem Computer neu.
