# Helpers of tests/engines/tls.sh, sourced: the test certificates and a
# second dockerd that listens on loopback over TLS.  Kept apart so that the
# pieces can be run by hand when a TLS failure needs looking at.

# tls_make_certs DIR: a CA, a server certificate for 127.0.0.1 and localhost,
# a client certificate, and a second CA with its own client certificate (for
# the refusal tests).  File names as the docker CLI wants them in
# DOCKER_CERT_PATH: ca.pem, cert.pem, key.pem.
tls_make_certs() {
	local d=$1 name
	mkdir -p "$d/client" "$d/other" || return 1
	# CAs: self-signed, EC P-256, valid two days (a CI run is minutes).
	for name in ca other/ca; do
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$d/$name-key.pem" -out "$d/$name.pem" -days 2 \
			-subj "/CN=cip-test-${name%%/*}" 2>/dev/null || return 1
	done
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' \
		>"$d/server.ext" || return 1
	printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext" || return 1
	tls_sign "$d" ca server "/CN=127.0.0.1" server.ext || return 1
	tls_sign "$d" ca client/cert "/CN=cip-test-client" client.ext || return 1
	tls_sign "$d" other/ca other/cert "/CN=cip-test-stranger" client.ext || return 1
	mv "$d/client/cert-key.pem" "$d/client/key.pem" && cp "$d/ca.pem" "$d/client/ca.pem" &&
		mv "$d/other/cert-key.pem" "$d/other/key.pem" || return 1
}

# tls_sign DIR CA NAME SUBJECT EXTFILE: NAME.pem and NAME-key.pem signed by CA.
tls_sign() {
	local d=$1 ca=$2 name=$3 subj=$4 ext=$5
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$name-key.pem" -out "$d/$name.csr" -subj "$subj" 2>/dev/null &&
	openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca-key.pem" \
		-CAcreateserial -days 2 -extfile "$d/$ext" -out "$d/$name.pem" 2>/dev/null &&
	rm -f "$d/$name.csr"
}

TLS_SOCK=/run/cip-dockerd-tls.sock
TLS_PIDFILE=/run/cip-dockerd-tls.pid
TLS_EXECROOT=/run/cip-dockerd-tls
# Its own bridge, never --bridge=none: a dockerd started with none deletes
# the host's docker0 (libnetwork's removeDefaultBridgeInterface), the main
# engine's bridge, and every container the main dockerd starts after that on
# the default network fails ("could not find bridge docker0").  A link-local
# address: nothing routes there, and nothing of the second engine uses it
# (its containers here have no network).
TLS_BRIDGE=cip-tls0
TLS_BRIDGE_ADDR=169.254.253.1/24

# tls_free_port: a TCP port free on 127.0.0.1 now.
tls_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# tls_start_dockerd CERTDIR DATAROOT PORT LOG: a second dockerd, in the
# background, that shares nothing with the main one: its own data and exec
# roots (so its managed containerd keeps its socket, state and content
# there), pidfile, unix socket, config file, containerd namespaces and
# cgroup parent; no bridge, no iptables, no sysctl.  TLS with client
# verification on 127.0.0.1:PORT, and on 127.0.0.2:PORT too, an address the
# server certificate does not name.  Sets TLS_DOCKERD_PID; waits until the
# unix socket answers.
tls_start_dockerd() {
	local certs=$1 root=$2 port=$3 log=$4 i
	if [[ -S $TLS_SOCK ]] && curl -s --max-time 2 --unix-socket "$TLS_SOCK" \
		http://localhost/_ping >/dev/null 2>&1; then
		echo "tls: a dockerd answers on $TLS_SOCK already (another TLS stage?)" >&2
		return 1
	fi
	mkdir -p "$root" && echo '{}' >"$root/daemon.json" || return 1
	if ! ip link show "$TLS_BRIDGE" >/dev/null 2>&1; then
		ip link add name "$TLS_BRIDGE" type bridge &&
			ip addr add "$TLS_BRIDGE_ADDR" dev "$TLS_BRIDGE" || return 1
	fi
	setsid dockerd --config-file "$root/daemon.json" \
		--data-root "$root/data" --exec-root "$TLS_EXECROOT" --pidfile "$TLS_PIDFILE" \
		-H "unix://$TLS_SOCK" -H "tcp://127.0.0.1:$port" -H "tcp://127.0.0.2:$port" \
		--tlsverify --tlscacert "$certs/ca.pem" --tlscert "$certs/server.pem" \
		--tlskey "$certs/server-key.pem" \
		--bridge "$TLS_BRIDGE" --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \
		--containerd-namespace cip-tls --containerd-plugins-namespace cip-tls-plugins \
		--cgroup-parent /cip-dockerd-tls \
		</dev/null >>"$log" 2>&1 &
	TLS_DOCKERD_PID=$!
	for ((i = 0; i < 240; i++)); do
		curl -s --max-time 2 --unix-socket "$TLS_SOCK" http://localhost/_ping >/dev/null 2>&1 &&
			return 0
		kill -0 "$TLS_DOCKERD_PID" 2>/dev/null || break
		sleep 0.25
	done
	echo "tls: the second dockerd did not come up; its log:" >&2
	tail -40 "$log" >&2
	return 1
}
