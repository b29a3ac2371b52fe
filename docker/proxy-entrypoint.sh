#!/bin/sh
# Start code-interpreter-proxy as the unprivileged user cip (uid 10001),
# with the group that owns the Docker socket added, so no root is needed.
#
# - Started with --user (not root): run as that user, as is.
# - The socket is not group read-writable (e.g. mode 0600): cip could not
#   use it, so the proxy runs as root, with a warning.
# - The data directory belongs to someone else (a host bind mount): it is
#   given to cip first.
set -eu

if [ "$(id -u)" != 0 ]; then
	exec code-interpreter-proxy "$@"
fi

data=${CI_FILE_STORAGE_PATH:-/data/code-interpreter}
host=${CI_DOCKER_HOST:-unix:///var/run/docker.sock}
groups=--clear-groups
case $host in
unix://*)
	sock=${host#unix://}
	if [ -S "$sock" ]; then
		mode=$(stat -c %a "$sock")
		gid=$(stat -c %g "$sock")
		case $mode in
		?[67]?)	groups=--groups=$gid ;;
		*)	echo "cip-entrypoint: $sock (mode $mode) is not group read-writable:" \
			    "running as root" >&2
			exec code-interpreter-proxy "$@" ;;
		esac
	else
		echo "cip-entrypoint: no socket at $sock; mount it with" \
		    "-v /var/run/docker.sock:$sock" >&2
	fi
	;;
esac

mkdir -p "$data"
if [ "$(stat -c %u "$data")" != 10001 ]; then
	chown -R cip:cip "$data"
fi
exec setpriv --reuid=cip --regid=cip "$groups" --inh-caps=-all --bounding-set=-all \
	--no-new-privs code-interpreter-proxy "$@"
