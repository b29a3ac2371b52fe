# Programmatic tool calling, bash: run the model's script with its tools.
#
#   bash /opt/cip/ptc/ptc.sh script.sh [args...]
#
# Each tool in CIP_PTC_TOOLS (lines "shell_name<TAB>json_original_name", made
# by the proxy) is a function taking one JSON argument; it prints the result
# as compact JSON, or the error on stderr and returns 1.  A call is one JSON
# line on fd 3, the runner's tool link, and the answer one line back
# ("0<TAB>json" or "1<TAB>message"); calls from background jobs take turns.
# Builtins and commands are named as such here: a tool may be called printf.
__cip_ptc_call() {
	builtin local name input n reply
	name=$1
	input=${2:-'{}'}
	input=${input//$'\n'/ }
	{
		command flock 9
		n=$(( $(command cat /tmp/.cip-ptc-seq 2>/dev/null || builtin echo 0) + 1 ))
		builtin echo "$n" > /tmp/.cip-ptc-seq
		builtin printf '{"calls":[{"id":"call_%03d","name":%s,"input":%s}]}\n' "$n" "$name" "$input" >&3
		IFS= builtin read -r reply <&3
	} 9>/tmp/.cip-ptc.lock
	case $reply in
	0$'\t'*) builtin printf '%s\n' "${reply#*$'\t'}" ;;
	*) builtin printf '%s\n' "${reply#*$'\t'}" >&2; builtin return 1 ;;
	esac
}
builtin export -f __cip_ptc_call
while IFS=$'\t' builtin read -r __cip_fn __cip_orig; do
	[[ -n $__cip_fn ]] || continue
	builtin eval "$__cip_fn() { __cip_ptc_call $(builtin printf '%q' "$__cip_orig") \"\$@\"; }"
	builtin export -f "$__cip_fn"
done <<< "${CIP_PTC_TOOLS:-}"
builtin unset CIP_PTC_TOOLS __cip_fn __cip_orig
__cip_script=$1
builtin shift
builtin source "./$__cip_script"
