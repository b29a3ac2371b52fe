# Programmatic tool calling, bash: run the model's script with its tools.
#
#   bash /opt/cip/ptc/ptc.sh script.sh [args...]
#
# Each tool in CIP_PTC_TOOLS (lines "shell_name<TAB>json_original_name", made
# by the proxy) is a function taking one JSON argument; it prints the result
# as compact JSON, or the error on stderr and returns 1.  A call is one JSON
# line on fd 3, the runner's tool link, and the answer one line back
# ("0<TAB>json" or "1<TAB>message"); calls from background jobs take turns.
__cip_ptc_call() {
	local name=$1 input=${2:-'{}'} n reply
	input=${input//$'\n'/ }
	{
		flock 9
		n=$(( $(cat /tmp/.cip-ptc-seq 2>/dev/null || echo 0) + 1 ))
		echo "$n" > /tmp/.cip-ptc-seq
		printf '{"calls":[{"id":"call_%03d","name":%s,"input":%s}]}\n' "$n" "$name" "$input" >&3
		IFS= read -r reply <&3
	} 9>/tmp/.cip-ptc.lock
	case $reply in
	0$'\t'*) printf '%s\n' "${reply#*$'\t'}" ;;
	*) printf '%s\n' "${reply#*$'\t'}" >&2; return 1 ;;
	esac
}
export -f __cip_ptc_call
while IFS=$'\t' read -r __cip_fn __cip_orig; do
	[ -n "$__cip_fn" ] || continue
	eval "$__cip_fn() { __cip_ptc_call $(printf '%q' "$__cip_orig") \"\$@\"; }"
	export -f "$__cip_fn"
done <<< "${CIP_PTC_TOOLS:-}"
unset CIP_PTC_TOOLS __cip_fn __cip_orig
__cip_script=$1
shift
. "./$__cip_script"
