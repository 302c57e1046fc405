# Pages de QR Bridge, français.

## Toutes les pages
skip-link = Aller au contenu
footer-secured = Protégé par des clés d'accès
language = Langue
not-found-title = Page introuvable
not-found-message = Il n'y a rien à cette adresse.
not-found-home = Aller à la page de connexion
error-title = Une erreur s'est produite

## La page de connexion de l'ordinateur
desk-preparing = Préparation de votre code de connexion…
desk-no-app-title = Application inconnue
desk-no-app-message = Cette page de connexion n'existe pas. Vérifiez l'adresse.
desk-qr-label = Code QR à scanner avec votre téléphone
desk-expires = Le code expire dans { $time }
desk-title = Connectez-vous avec votre téléphone
desk-step-camera = Ouvrez l'appareil photo du téléphone qui a votre clé d'accès.
desk-step-approve = Scannez ce code et validez avec votre empreinte, votre visage ou votre code PIN.
desk-scanned = Code scanné — regardez votre téléphone
desk-match = Code scanné — sur votre téléphone, touchez ce nombre :
desk-waiting = En attente de votre téléphone
desk-link = Impossible de scanner ? Ouvrez ce lien sur votre téléphone :
cancel = Annuler
desk-signed-in-title = Vous êtes connecté
desk-signed-in-as = Connecté en tant que { $user }
desk-token = Jeton de session { $token } — gardé par le serveur, jamais affiché en entier.
desk-sign-out = Se déconnecter
desk-denied-title = Connexion refusée
desk-denied-message = La demande a été refusée sur le téléphone.
desk-cancelled-title = Connexion annulée
desk-cancelled-message = Vous avez annulé cette connexion.
desk-expired-title = Ce code a expiré
desk-expired-message = Les codes sont valables quelques minutes. Demandez-en un nouveau pour réessayer.
desk-new-code = Obtenir un nouveau code
desk-too-many = Trop de nouveaux codes depuis cet endroit. Attendez une minute, puis réessayez.

## La page d'approbation du téléphone
phone-loading = Chargement de la demande…
phone-close = Vous pouvez fermer cette fenêtre.
phone-eyebrow = Demande de connexion
phone-title = { $app } veut vous connecter
phone-asking = Qui le demande
phone-device = Appareil
phone-where = Où
phone-network = Réseau
phone-requested = Demandé
phone-warning = Vous n'avez pas lancé cela sur votre ordinateur ? Refusez.
network-same = Le même que ce téléphone
network-different = Pas le réseau de ce téléphone
elsewhere-title = Cette demande vient d'un autre réseau
elsewhere-text = L'ordinateur qui demande n'est pas sur le réseau de ce téléphone. À moins que vous ne soyez en train de vous connecter sur un ordinateur devant vous, refusez : quelqu'un essaie peut-être d'accéder à votre compte.
place = { $city }, { $country }
numbers-legend = Touchez le nombre affiché sur votre ordinateur
numbers-none = Aucun nombre sur votre ordinateur ? Refusez.
getting-ready = Préparation…
approve-create = Créer une clé d'accès et valider
approve = Valider avec une clé d'accès
decline = Refuser
working-create = Création de votre clé d'accès…
working-use = En attente de votre clé d'accès…
working-prepare = Préparation…
working-decline = Refus en cours…
working-check = Vérification…
working-disown = Déconnexion de cet ordinateur…
no-passkey = Aucune clé d'accès n'a été utilisée.
no-passkey-create = Si ce téléphone n'a pas encore de clé d'accès pour { $app }, créez-en une maintenant : c'est rapide et cela vous connecte.
no-passkey-other = Utilisez un téléphone qui a une clé d'accès pour ce compte, ou réessayez.
create-passkey = Créer une clé d'accès
try-again = Réessayer
done = C'est fait. Vous pouvez fermer cette fenêtre.
done-desktop = Vous êtes en cours de connexion sur votre ordinateur.
allowed = Ce que vous avez autorisé
allowed-app = Application
allowed-at = Validé
approved-with-new = Validé avec la clé d'accès que vous venez de créer.
approved-with-dated = Validé avec votre clé d'accès créée le { $date }.
not-me = Ce n'était pas moi
disowned-title = Déconnecté
disowned-text = La connexion de cet ordinateur a été révoquée : il ne peut plus l'utiliser. Vous n'avez rien d'autre à faire.
declined = Refusé. Vous pouvez fermer cette fenêtre.
declined-nobody = Personne n'a été connecté.
ceremony-unsupported = Ce navigateur ne peut pas utiliser de clés d'accès ici.
ceremony-failed = La demande de clé d'accès a échoué. Réessayez.
unknown-browser = Un navigateur inconnu
browser-on = { $browser } sur { $os }
requested-ago =
    { $minutes ->
        [0] à l'instant
        [one] il y a une minute
       *[other] il y a { $minutes } minutes
    }
retry-ours = Cela n'a pas abouti de notre côté. Réessayez.
answer-unreadable = La réponse de la clé d'accès n'a pas pu être lue. Réessayez.

## Pourquoi une demande ne peut pas continuer
scan-again = Retournez à votre ordinateur et scannez un nouveau code.
not-verified-advice = Cette clé d'accès n'a pas pu être vérifiée. Réessayez.
generic-title = Une erreur s'est produite
generic-advice = Réessayez dans un instant.
limited-title = Trop de tentatives
limited-advice = Attendez une minute, puis réessayez.
invalid-code-title = Ce code n'est pas valide
expired-title = Ce code a expiré
declined-title = Refusé
declined-advice = La connexion a été refusée sur le téléphone.
cancelled-title = Annulé sur l'ordinateur
cancelled-advice = La connexion a été annulée. Recommencez sur votre ordinateur.
already-approved-title = Déjà validé
already-approved-advice = Cette connexion a déjà été validée.
already-declined-title = Déjà refusé
already-declined-advice = Cette connexion a été refusée.
pick-first-title = Choisissez d'abord le nombre
pick-first-advice = Touchez le nombre affiché sur votre ordinateur, puis validez.
cant-go-on-title = Cette demande ne peut pas continuer
not-verified-title = Non vérifié
unknown-passkey-title = Clé d'accès inconnue
unknown-passkey-advice = Cette clé d'accès n'est pas enregistrée ici. Utilisez-en une autre ou créez-en une.
no-signup-title = Vous ne pouvez pas créer de compte ici
no-signup-advice = Connectez-vous avec une clé d'accès que vous avez déjà pour cette application.
account-exists-title = Ce compte existe déjà
account-exists-advice = Connectez-vous plutôt avec sa clé d'accès, ou demandez à l'application d'ajouter celle-ci.
other-device-title = Cette demande est ouverte sur un autre appareil
other-device-advice = Seul l'appareil qui l'a ouverte en premier peut la valider ou la refuser.
wrong-pin-title = Code PIN incorrect
wrong-pin-advice = Vérifiez le code PIN sur l'autre appareil et réessayez.
pin-locked-title = Trop de codes PIN incorrects
pin-locked-advice = Recommencez sur l'autre appareil pour obtenir un nouveau code PIN.
bad-link-title = Ce lien n'est pas valide
other-browser-title = Ouvrez ceci dans le navigateur auquel il était destiné
already-creates-title = Cette demande crée déjà une clé d'accès
already-creates-advice = Revenez en arrière et validez-la telle quelle.
account-gone-title = Ce compte n'existe plus
account-gone-advice = Retournez à votre ordinateur et recommencez.
unreachable-title = Notre service est injoignable pour le moment
unreachable-advice = Notre service est injoignable pour le moment. Attendez un instant, puis réessayez.
ours-title = Une erreur s'est produite de notre côté
ours-advice = Une erreur s'est produite de notre côté. Réessayez.
wrong-number-title = Mauvais nombre : refusé
wrong-number-advice = Pour votre sécurité, personne n'a été connecté. Si c'était vous, recommencez sur votre ordinateur.
