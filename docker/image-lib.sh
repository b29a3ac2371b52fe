# Shared by build-sandbox-image.sh and build-proxy-image.sh (sourced, not
# run).  An image carries the label cip.build-hash; a build is skipped when
# the tag already has the hash of its current inputs.
# Needs: DOCKER (the CLI), NETWORK (for RUN steps), die().

# Is TAG built from inputs with this hash?
image_current() {	# TAG HASH
	local current
	current=$("$DOCKER" image inspect --format '{{ index .Config.Labels "cip.build-hash" }}' \
		"$1" 2>/dev/null || true)
	[[ $current == "$2" ]]
}

# Build TAG from CONTEXT (extra docker build arguments after it), label it
# with HASH, keep the log in LOG (printed only on failure), and drop the
# image TAG pointed at before if nothing else uses it.
image_build() {		# TAG HASH LOG CONTEXT [ARGS...]
	local tag=$1 hash=$2 log=$3 ctx=$4 old_id new_id
	shift 4
	old_id=$("$DOCKER" image inspect --format '{{ .Id }}' "$tag" 2>/dev/null || true)
	mkdir -p "$(dirname "$log")"
	if ! "$DOCKER" build --network "$NETWORK" --label "cip.build-hash=$hash" \
			-t "$tag" "$@" "$ctx" >"$log" 2>&1; then
		cat "$log" >&2
		die "docker build of $tag failed (log: $log)"
	fi
	new_id=$("$DOCKER" image inspect --format '{{ .Id }}' "$tag")
	if [[ -n $old_id && $old_id != "$new_id" ]]; then
		"$DOCKER" image rm "$old_id" >/dev/null 2>&1 || true
	fi
}
