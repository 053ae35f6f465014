#!/usr/bin/env bash
# Installs Postfix and Dovecot from Debian's packages when they are missing, writes their
# configuration under a state folder and (re)starts them, for the mail tests. Everything
# listens on 127.0.0.1 only:
#
#   Postfix SMTP   127.0.0.1:2525  no authentication; takes mail for example.com,
#                                  example.org and example.net and hands it to Dovecot over
#                                  LMTP. It rejects every other recipient domain at RCPT
#                                  time, and its only transport for other domains is
#                                  `error`, so no message ever leaves this machine.
#   Dovecot IMAP   127.0.0.1:1143  plain, with STARTTLS
#   Dovecot IMAPS  127.0.0.1:1993  TLS
#   Dovecot LMTP   127.0.0.1:2424  Postfix's delivery into the maildirs
#
# Every address of the three domains is a user with the password $TEND_TEST_MAIL_PASSWORD
# (default tend-test-password), its maildir under the state folder, so each test can use
# addresses of its own. The TLS certificate (CN localhost, IP 127.0.0.1) is signed by a CA
# that the script creates; the tests trust $STATE/ca.crt.
#
# The state folder is $TEND_TEST_MAIL_DIR, /var/lib/tend-test-mail by default. Running the
# script again rewrites the configuration and restarts both servers; the mail and the
# certificates stay. It prints the environment the tests read. When the packages cannot
# be installed it prints apt's output and exits with 0, so the run goes on and the mail
# tests skip (or fail, under TEND_REQUIRE_MAIL_SERVERS=1).
set -euo pipefail

state="${TEND_TEST_MAIL_DIR:-/var/lib/tend-test-mail}"
password="${TEND_TEST_MAIL_PASSWORD:-tend-test-password}"
smtp_port=2525
imap_port=1143
imaps_port=1993
lmtp_port=2424
domains="example.com example.org example.net"

if ! command -v postfix >/dev/null || ! command -v dovecot >/dev/null ||
    [ ! -e /usr/lib/dovecot/lmtp ] || [ ! -e /usr/lib/dovecot/imap ]; then
    echo "installing Debian's packages postfix, dovecot-imapd and dovecot-lmtpd for the mail tests" >&2
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    # "No configuration" keeps the package from asking questions and from writing a
    # main.cf of its own: this script runs Postfix with its own configuration folder.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    if ! { apt-get -o DPkg::Lock::Timeout=300 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
            --no-install-recommends postfix dovecot-imapd dovecot-lmtpd openssl; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "could not install Postfix and Dovecot: the mail server tests will fail, or be skipped where TEND_REQUIRE_MAIL_SERVERS is not 1" >&2
        exit 0
    fi
fi

# Dovecot refuses to store mail as root, so the maildirs belong to a system user.
if ! id tendmail >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir "$state/mail" --shell /usr/sbin/nologin tendmail
fi
mail_uid="$(id -u tendmail)"

mkdir -p "$state"/{mail,postfix,postfix-queue,postfix-data,dovecot-run,dovecot-state,tls}
chown tendmail:tendmail "$state/mail"
chmod 0755 "$state"

# The CA and the server certificate are made once. The server certificate is signed by
# the CA, because rustls rejects a CA certificate that a server presents as its own.
tls="$state/tls"
if [ ! -s "$tls/server.crt" ] || [ ! -s "$tls/ca.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Tend test mail CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.crt" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
        -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 3650 -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
    chmod 0600 "$tls/server.key" "$tls/ca.key"
fi
chmod 0644 "$tls/ca.crt"

# Dovecot. `dovecot -c` runs an instance of its own, beside any system Dovecot.
dovecot_conf="$state/dovecot.conf"
cat >"$dovecot_conf" <<EOF
# Written by scripts/ensure-mailserver.sh; rewritten on every run.
instance_name = tend-test
base_dir = $state/dovecot-run
state_dir = $state/dovecot-state
log_path = $state/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = yes
ssl_cert = <$tls/server.crt
ssl_key = <$tls/server.key
# Plain logins over the STARTTLS port before STARTTLS are allowed, so that a test can
# check \`security: none\`; the port is on the loopback interface only.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_username_format = %Lu
# support+INC0000042@example.com is delivered to support@example.com.
recipient_delimiter = +
first_valid_uid = $mail_uid
last_valid_uid = $mail_uid
mail_location = maildir:$state/mail/%d/%n
passdb {
  driver = static
  args = password=$password
}
userdb {
  driver = static
  args = uid=tendmail gid=tendmail home=$state/mail/%d/%n
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $imap_port
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $imaps_port
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $lmtp_port
  }
}
protocol lmtp {
  postmaster_address = postmaster@example.com
}
protocol imap {
  mail_max_userip_connections = 100
}
EOF

# Postfix, run with `postfix -c DIR`: its own main.cf, master.cf and queue.
pf="$state/postfix"
cat >"$pf/main.cf" <<EOF
# Written by scripts/ensure-mailserver.sh; rewritten on every run.
compatibility_level = 3.6
queue_directory = $state/postfix-queue
data_directory = $state/postfix-data
mail_owner = postfix
setgid_group = postdrop
maillog_file = $state/postfix.log
myhostname = tend-test.localhost
mydomain = localhost
myorigin = \$myhostname
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
relayhost =
relay_domains =
virtual_mailbox_domains = $domains
# support+INC0000042@example.com reaches support@example.com's mailbox, as Tend's reply
# addresses (reply_tokens) expect of a mail server.
recipient_delimiter = +
virtual_transport = lmtp:inet:127.0.0.1:$lmtp_port
# Nothing leaves this machine: mail for any other domain is rejected at RCPT time, and
# would find only the error transport if it got past that.
smtpd_relay_restrictions = reject_unauth_destination
default_transport = error:this test mail server delivers only to $domains
relay_transport = error:this test mail server delivers only to $domains
local_transport = error:this test mail server delivers only to $domains
smtpd_banner = \$myhostname ESMTP tend test server
biff = no
message_size_limit = 52428800
EOF
cat >"$pf/master.cf" <<EOF
# Written by scripts/ensure-mailserver.sh; rewritten on every run. No service runs in a
# chroot, so the queue folder needs no copies of system files.
127.0.0.1:$smtp_port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

# Restart both, so that the configuration just written is the one in force.
postfix -c "$pf" stop >/dev/null 2>&1 || true
dovecot -c "$dovecot_conf" stop >/dev/null 2>&1 || true
for _ in $(seq 100); do
    if ! postfix -c "$pf" status >/dev/null 2>&1 && [ ! -e "$state/dovecot-run/master.pid" ]; then
        break
    fi
    sleep 0.1
done
postfix -c "$pf" set-permissions >/dev/null 2>&1 || true
postfix -c "$pf" check </dev/null
postfix -c "$pf" start </dev/null >/dev/null 2>&1 || {
    echo "Postfix did not start; its log is $state/postfix.log" >&2
    tail -20 "$state/postfix.log" >&2 || true
    exit 1
}
# The daemons must not keep this script's standard output open: a caller that reads it
# would wait for them to end.
dovecot -c "$dovecot_conf" </dev/null >>"$state/dovecot.log" 2>&1 || {
    echo "Dovecot did not start; its log is $state/dovecot.log" >&2
    tail -20 "$state/dovecot.log" >&2 || true
    exit 1
}

# Wait until every port accepts connections, so that the first test does not race the start.
for port in $smtp_port $imap_port $imaps_port $lmtp_port; do
    for attempt in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            break
        fi
        if [ "$attempt" = 100 ]; then
            echo "nothing listens on 127.0.0.1:$port after 10 seconds; see $state/postfix.log and $state/dovecot.log" >&2
            exit 1
        fi
        sleep 0.1
    done
done

echo "started Postfix (SMTP 127.0.0.1:$smtp_port) and Dovecot (IMAP 127.0.0.1:$imap_port with STARTTLS, IMAPS 127.0.0.1:$imaps_port, LMTP 127.0.0.1:$lmtp_port) for $domains; state in $state" >&2
echo "TEND_TEST_SMTP_PORT=$smtp_port"
echo "TEND_TEST_IMAP_PORT=$imap_port"
echo "TEND_TEST_IMAPS_PORT=$imaps_port"
echo "TEND_TEST_MAIL_PASSWORD=$password"
echo "TEND_TEST_MAIL_CA=$tls/ca.crt"
