# Páginas de QR Bridge, español.

## Todas las páginas
skip-link = Ir al contenido
footer-secured = Protegido con llaves de acceso
language = Idioma
not-found-title = Página no encontrada
not-found-message = No hay nada en esta dirección.
not-found-home = Ir a la página de inicio de sesión
error-title = Algo ha fallado

## Página de inicio de sesión del ordenador
desk-preparing = Preparando tu código de inicio de sesión…
desk-no-app-title = Esta aplicación no existe
desk-no-app-message = Esta página de inicio de sesión no existe. Comprueba la dirección.
desk-qr-label = Código QR para escanear con tu teléfono
desk-expires = El código caduca en { $time }
desk-title = Inicia sesión con tu teléfono
desk-step-camera = Abre la cámara del teléfono que tiene tu llave de acceso.
desk-step-approve = Escanea este código y aprueba con tu huella, tu cara o tu PIN.
desk-scanned = Escaneado — mira tu teléfono
desk-match = Escaneado — en tu teléfono, toca este número:
desk-waiting = Esperando a tu teléfono
desk-link = ¿No puedes escanear? Abre este enlace en tu teléfono:
cancel = Cancelar
desk-signed-in-title = Has iniciado sesión
desk-signed-in-as = Sesión iniciada como { $user }
desk-token = Token de sesión { $token }: lo guarda el servidor y nunca se muestra entero.
desk-sign-out = Cerrar sesión
desk-denied-title = Inicio de sesión rechazado
desk-denied-message = La solicitud se rechazó en el teléfono.
desk-cancelled-title = Inicio de sesión cancelado
desk-cancelled-message = Has cancelado este inicio de sesión.
desk-expired-title = Este código ha caducado
desk-expired-message = Los códigos valen unos minutos. Pide uno nuevo para volver a intentarlo.
desk-new-code = Obtener un código nuevo
desk-too-many = Demasiados códigos nuevos desde aquí. Espera un minuto y vuelve a intentarlo.

## Página de aprobación del teléfono
phone-loading = Cargando la solicitud…
phone-close = Puedes cerrar esta ventana.
phone-eyebrow = Solicitud de inicio de sesión
phone-title = { $app } quiere iniciar tu sesión
phone-asking = Quién lo pide
phone-device = Dispositivo
phone-where = Dónde
phone-network = Red
phone-requested = Solicitado
phone-warning = ¿No lo has iniciado tú en tu ordenador? Recházalo.
network-same = La misma que este teléfono
network-different = No es la red de este teléfono
elsewhere-title = Esta solicitud viene de otra red
elsewhere-text = El ordenador que lo pide no está en la red de este teléfono. Salvo que estés iniciando sesión ahora mismo en un ordenador que tienes delante, recházalo: alguien podría estar intentando entrar en tu cuenta.
place = { $city }, { $country }
numbers-legend = Toca el número que muestra tu ordenador
numbers-none = ¿Tu ordenador no muestra ningún número? Recházalo.
getting-ready = Preparando…
approve-create = Crear llave de acceso y aprobar
approve = Aprobar con llave de acceso
decline = Rechazar
working-create = Creando tu llave de acceso…
working-use = Esperando a tu llave de acceso…
working-prepare = Preparando…
working-decline = Rechazando…
working-check = Comprobando…
working-disown = Cerrando la sesión de ese ordenador…
no-passkey = No se usó ninguna llave de acceso.
no-passkey-create = Si este teléfono aún no tiene una llave de acceso para { $app }, crea una ahora: es un momento y te inicia la sesión.
no-passkey-other = Usa un teléfono que tenga una llave de acceso para esta cuenta, o vuelve a intentarlo.
create-passkey = Crear una llave de acceso
try-again = Volver a intentarlo
done = Hecho. Puedes cerrar esta ventana.
done-desktop = Estás iniciando sesión en tu ordenador.
allowed = Lo que has permitido
allowed-app = Aplicación
allowed-at = Aprobado
approved-with-new = Aprobado con la llave de acceso que acabas de crear.
approved-with-dated = Aprobado con tu llave de acceso creada el { $date }.
not-me = No he sido yo
disowned-title = Sesión cerrada
disowned-text = Se ha revocado el inicio de sesión de ese ordenador: ya no puede usarlo. No tienes que hacer nada más.
declined = Rechazado. Puedes cerrar esta ventana.
declined-nobody = No se ha iniciado ninguna sesión.
ceremony-unsupported = Este navegador no puede usar llaves de acceso aquí.
ceremony-failed = La solicitud de la llave de acceso ha fallado. Vuelve a intentarlo.
unknown-browser = Un navegador desconocido
browser-on = { $browser } en { $os }
requested-ago =
    { $minutes ->
        [0] ahora mismo
        [one] hace un minuto
       *[other] hace { $minutes } minutos
    }
retry-ours = No se completó por un fallo nuestro. Vuelve a intentarlo.
answer-unreadable = No se pudo leer la respuesta de la llave de acceso. Vuelve a intentarlo.

## Por qué una solicitud no puede seguir
scan-again = Vuelve a tu ordenador y escanea un código nuevo.
not-verified-advice = No se pudo verificar esa llave de acceso. Vuelve a intentarlo.
generic-title = Algo ha fallado
generic-advice = Vuelve a intentarlo en un momento.
limited-title = Demasiados intentos
limited-advice = Espera un minuto y vuelve a intentarlo.
invalid-code-title = Este código no es válido
expired-title = Este código ha caducado
declined-title = Rechazado
declined-advice = El inicio de sesión se rechazó en el teléfono.
cancelled-title = Cancelado en el ordenador
cancelled-advice = Se canceló el inicio de sesión. Empieza de nuevo en tu ordenador.
already-approved-title = Ya aprobado
already-approved-advice = Este inicio de sesión ya se aprobó.
already-declined-title = Ya rechazado
already-declined-advice = Este inicio de sesión se rechazó.
pick-first-title = Primero elige el número
pick-first-advice = Toca el número que muestra tu ordenador y luego aprueba.
cant-go-on-title = Esta solicitud no puede continuar
not-verified-title = No verificado
unknown-passkey-title = Llave de acceso desconocida
unknown-passkey-advice = Esta llave de acceso no está registrada aquí. Usa otra o crea una.
no-signup-title = Aquí no puedes crear una cuenta
no-signup-advice = Inicia sesión con una llave de acceso que ya tengas para esta aplicación.
account-exists-title = Esta cuenta ya existe
account-exists-advice = Inicia sesión con su llave de acceso o pide a la aplicación que añada esta.
other-device-title = Esta solicitud está abierta en otro dispositivo
other-device-advice = Solo el dispositivo que la abrió primero puede aprobarla o rechazarla.
wrong-pin-title = PIN incorrecto
wrong-pin-advice = Comprueba el PIN en el otro dispositivo y vuelve a intentarlo.
pin-locked-title = Demasiados PIN incorrectos
pin-locked-advice = Empieza de nuevo en el otro dispositivo para obtener un PIN nuevo.
bad-link-title = Este enlace no es válido
other-browser-title = Ábrelo en el navegador al que iba destinado
already-creates-title = Esta solicitud ya crea una llave de acceso
already-creates-advice = Vuelve atrás y apruébala tal como está.
account-gone-title = Esta cuenta ya no existe
account-gone-advice = Vuelve a tu ordenador y empieza de nuevo.
unreachable-title = Ahora mismo no podemos acceder a nuestro servicio
unreachable-advice = Ahora mismo no podemos acceder a nuestro servicio. Espera un momento y vuelve a intentarlo.
ours-title = Algo ha fallado por nuestra parte
ours-advice = Algo ha fallado por nuestra parte. Vuelve a intentarlo.
wrong-number-title = Número incorrecto: rechazado
wrong-number-advice = Por tu seguridad no se ha iniciado ninguna sesión. Si eras tú, empieza de nuevo en tu ordenador.
