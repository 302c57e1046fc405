# Páginas do QR Bridge, português.

## Todas as páginas
skip-link = Ir para o conteúdo
footer-secured = Protegido com chaves de acesso
language = Idioma
not-found-title = Página não encontrada
not-found-message = Não há nada neste endereço.
not-found-home = Ir para a página de início de sessão
error-title = Algo deu errado

## A página de início de sessão do computador
desk-preparing = Preparando seu código de acesso…
desk-no-app-title = Este aplicativo não existe
desk-no-app-message = Esta página de início de sessão não existe. Verifique o endereço.
desk-qr-label = Código QR para escanear com seu telefone
desk-expires = O código expira em { $time }
desk-title = Entre com seu telefone
desk-step-camera = Abra a câmera do telefone que tem sua chave de acesso.
desk-step-approve = Escaneie este código e aprove com sua digital, rosto ou PIN.
desk-scanned = Escaneado — olhe seu telefone
desk-match = Escaneado — no seu telefone, toque neste número:
desk-waiting = Aguardando seu telefone
desk-link = Não consegue escanear? Abra este link no seu telefone:
cancel = Cancelar
desk-signed-in-title = Você entrou
desk-signed-in-as = Sessão iniciada como { $user }
desk-token = Token de sessão { $token } — guardado pelo servidor, nunca mostrado inteiro.
desk-sign-out = Sair
desk-denied-title = Acesso recusado
desk-denied-message = A solicitação foi recusada no telefone.
desk-cancelled-title = Acesso cancelado
desk-cancelled-message = Você cancelou este acesso.
desk-expired-title = Este código expirou
desk-expired-message = Os códigos valem por alguns minutos. Peça um novo para tentar de novo.
desk-new-code = Obter um novo código
desk-too-many = Muitos códigos novos a partir daqui. Aguarde um minuto e tente de novo.

## A página de aprovação do telefone
phone-loading = Carregando a solicitação…
phone-close = Você pode fechar esta janela.
phone-eyebrow = Solicitação de acesso
phone-title = { $app } quer iniciar sua sessão
phone-asking = Quem está pedindo
phone-device = Dispositivo
phone-where = Onde
phone-network = Rede
phone-requested = Solicitado
phone-warning = Não foi você que iniciou isto no computador? Recuse.
network-same = A mesma deste telefone
network-different = Não é a rede deste telefone
elsewhere-title = Esta solicitação vem de outra rede
elsewhere-text = O computador que está pedindo não está na rede deste telefone. A menos que você esteja entrando agora num computador à sua frente, recuse: alguém pode estar tentando acessar sua conta.
place = { $city }, { $country }
numbers-legend = Toque no número que seu computador mostra
numbers-none = Nenhum número no seu computador? Recuse.
getting-ready = Preparando…
approve-create = Criar chave de acesso e aprovar
approve = Aprovar com chave de acesso
decline = Recusar
working-create = Criando sua chave de acesso…
working-use = Aguardando sua chave de acesso…
working-prepare = Preparando…
working-decline = Recusando…
working-check = Verificando…
working-disown = Encerrando a sessão daquele computador…
no-passkey = Nenhuma chave de acesso foi usada.
no-passkey-create = Se este telefone ainda não tem uma chave de acesso para { $app }, crie uma agora: leva um instante e inicia sua sessão.
no-passkey-other = Use um telefone que tenha uma chave de acesso para esta conta ou tente de novo.
create-passkey = Criar uma chave de acesso
try-again = Tentar de novo
done = Pronto. Você pode fechar esta janela.
done-desktop = Sua sessão está sendo iniciada no computador.
allowed = O que você permitiu
allowed-app = Aplicativo
allowed-at = Aprovado
approved-with-new = Aprovado com a chave de acesso que você acabou de criar.
approved-with-dated = Aprovado com sua chave de acesso criada em { $date }.
not-me = Não fui eu
disowned-title = Sessão encerrada
disowned-text = O acesso daquele computador foi revogado: ele não pode mais usá-lo. Você não precisa fazer mais nada.
declined = Recusado. Você pode fechar esta janela.
declined-nobody = Ninguém entrou.
ceremony-unsupported = Este navegador não pode usar chaves de acesso aqui.
ceremony-failed = O pedido da chave de acesso falhou. Tente de novo.
unknown-browser = Um navegador desconhecido
browser-on = { $browser } no { $os }
requested-ago =
    { $minutes ->
        [0] agora mesmo
        [one] há um minuto
       *[other] há { $minutes } minutos
    }
retry-ours = Isso não funcionou do nosso lado. Tente de novo.
answer-unreadable = Não foi possível ler a resposta da chave de acesso. Tente de novo.

## Por que uma solicitação não pode continuar
scan-again = Volte ao seu computador e escaneie um novo código.
not-verified-advice = Não foi possível verificar essa chave de acesso. Tente de novo.
generic-title = Algo deu errado
generic-advice = Tente de novo em instantes.
limited-title = Tentativas demais
limited-advice = Aguarde um minuto e tente de novo.
invalid-code-title = Este código não é válido
expired-title = Este código expirou
declined-title = Recusado
declined-advice = O acesso foi recusado no telefone.
cancelled-title = Cancelado no computador
cancelled-advice = O acesso foi cancelado. Comece de novo no seu computador.
already-approved-title = Já aprovado
already-approved-advice = Este acesso já foi aprovado.
already-declined-title = Já recusado
already-declined-advice = Este acesso foi recusado.
pick-first-title = Escolha o número primeiro
pick-first-advice = Toque no número que seu computador mostra e depois aprove.
cant-go-on-title = Esta solicitação não pode continuar
not-verified-title = Não verificado
unknown-passkey-title = Chave de acesso desconhecida
unknown-passkey-advice = Esta chave de acesso não está registrada aqui. Use outra ou crie uma.
no-signup-title = Não é possível criar uma conta aqui
no-signup-advice = Entre com uma chave de acesso que você já tem para este aplicativo.
account-exists-title = Esta conta já existe
account-exists-advice = Entre com a chave de acesso dela ou peça ao aplicativo para adicionar esta.
other-device-title = Esta solicitação está aberta em outro dispositivo
other-device-advice = Só o dispositivo que a abriu primeiro pode aprová-la ou recusá-la.
wrong-pin-title = PIN incorreto
wrong-pin-advice = Confira o PIN no outro dispositivo e tente de novo.
pin-locked-title = PINs incorretos demais
pin-locked-advice = Comece de novo no outro dispositivo para obter um novo PIN.
bad-link-title = Este link não é válido
other-browser-title = Abra isto no navegador a que se destinava
already-creates-title = Esta solicitação já cria uma chave de acesso
already-creates-advice = Volte e aprove-a como está.
account-gone-title = Esta conta não existe mais
account-gone-advice = Volte ao seu computador e comece de novo.
unreachable-title = Não conseguimos acessar nosso serviço agora
unreachable-advice = Não conseguimos acessar nosso serviço agora. Aguarde um instante e tente de novo.
ours-title = Algo deu errado do nosso lado
ours-advice = Algo deu errado do nosso lado. Tente de novo.
wrong-number-title = Número errado: recusado
wrong-number-advice = Para sua segurança, ninguém entrou. Se foi você, comece de novo no seu computador.
