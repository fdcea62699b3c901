#!/bin/sh
# signet-verifier: the executable containerd's image-verifier plugin (io.containerd.image-verifier.v1.bindir)
# runs for every pull, as a POSIX shell script and one curl:
#   signet-verifier -name REF -digest DIGEST -stdin-media-type application/vnd.oci.descriptor.v1+json < descriptor
# It hands the flags and the descriptor to signetd's HTTP socket (src/daemon/verify-http.ts) and turns the
# answer into an exit code and one line on stdout (the reason containerd shows): 0 allow, 1 reject, 2 bad input.
# It fails closed: no answer from signetd means no pull.
#
# Why sh + curl and not Node: containerd starts one verifier per pull and kills it after 10 s. A Node start
# costs about 60 ms of CPU (`node -e 0`); sh + curl about a fifth of it (`npm run bench` measures both), so
# 100 pulls at once on two cores finish in well under a second of verifier time instead of many seconds.
#
# Rules kept here: untrusted text (the name, stdin, signetd's answer) is never evaluated, only quoted; it
# reaches stdout only when it holds no control characters; every curl failure is a rejection naming the
# socket. Runs under dash, bash and busybox sh. Needs curl 7.40 or later (--unix-socket).
#
# Environment: SIGNET_VERIFY_SOCKET (default /run/signet/verify.sock), SIGNET_VERIFIER_TIMEOUT (default 8s,
# counted from this process's start: curl is started at once and --max-time bounds the whole exchange).

LC_ALL=C
export LC_ALL
PATH=${PATH:-/usr/local/bin:/usr/bin:/bin}

socket=${SIGNET_VERIFY_SOCKET:-/run/signet/verify.sock}
media_type_expected='application/vnd.oci.descriptor.v1+json'
usage='usage: signet-verifier -name REF -digest DIGEST -stdin-media-type application/vnd.oci.descriptor.v1+json, descriptor on stdin'

# Control characters (C0 and DEL): text holding any is never printed.
controls=$(printf '\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020\021\022\023\024\025\026\027\030\031\032\033\034\035\036\037\177')

# shown=VALUE when it is printable and short, else a description of it: what may reach containerd's output.
show() {
  case $1 in
    *["$controls"]*) shown='(a value with control characters)' ;;
    *) if [ ${#1} -gt 512 ]; then shown="(a value of ${#1} bytes)"; else shown=$1; fi ;;
  esac
}

usage_error() {
  printf 'signet-verifier: %s; rejecting (%s)\n' "$1" "$usage"
  exit 2
}

# -version and -help, alone, never read stdin (signet doctor runs -version to see that the file starts).
if [ $# -eq 1 ]; then
  case $1 in
    -version | --version)
      version=unknown
      # The package.json of the installed package: this file is a link into it (signet install).
      self=$(readlink -f -- "$0" 2>/dev/null) || self=$0
      pkg=${self%/*}/../package.json
      if [ -r "$pkg" ]; then
        v=$(sed -n 's/^  "version": "\([0-9A-Za-z.+-]*\)",*$/\1/p' "$pkg")
        [ -n "$v" ] && version=$v
      fi
      printf 'signet-verifier %s\n' "$version"
      exit 0
      ;;
    -help | --help | -h)
      printf '%s\n' "usage: signet-verifier -name REF -digest DIGEST -stdin-media-type $media_type_expected < descriptor" \
        '       signet-verifier -version' '' \
        "containerd's image verifier (bindir plugin): asks signetd whether REF at DIGEST may be pulled." \
        'Exit 0 allow, 1 reject (also when signetd cannot answer: fail closed), 2 malformed arguments or stdin.' \
        'Environment: SIGNET_VERIFY_SOCKET (default /run/signet/verify.sock), SIGNET_VERIFIER_TIMEOUT (default 8s).' \
        'Needs curl; signet install links the Node verifier instead where curl is missing.'
      exit 0
      ;;
  esac
fi

# Go flag syntax as containerd writes it, parsed as src/verifier/contract.ts does: -flag value,
# -flag=value, one or two dashes; unknown or repeated flags are errors.
name='' digest='' media_type='' seen=' '
while [ $# -gt 0 ]; do
  arg=$1
  shift
  case $arg in
    --*) flag=${arg#--} ;;
    -*) flag=${arg#-} ;;
    *) flag='' ;;
  esac
  value='' has_value=''
  case $flag in
    *=*)
      value=${flag#*=}
      flag=${flag%%=*}
      has_value=1
      ;;
  esac
  case $flag in
    '' | *[!a-z-]*)
      show "$arg"
      usage_error "unexpected argument \"$shown\""
      ;;
  esac
  case $flag in
    name | digest | stdin-media-type) ;;
    *) usage_error "unknown flag \"-$flag\"" ;;
  esac
  case $seen in *" $flag "*) usage_error "flag \"-$flag\" given twice" ;; esac
  seen="$seen$flag "
  if [ -z "$has_value" ]; then
    [ $# -gt 0 ] || usage_error "flag \"-$flag\" needs a value"
    value=$1
    shift
  fi
  case $flag in
    name) name=$value ;;
    digest) digest=$value ;;
    stdin-media-type) media_type=$value ;;
  esac
done
[ -n "$name" ] || usage_error 'missing -name'
[ -n "$digest" ] || usage_error 'missing -digest'
[ -n "$media_type" ] || usage_error 'missing -stdin-media-type'
case $digest in
  sha256:*) hex=${digest#sha256:} hex_length=64 ;;
  sha512:*) hex=${digest#sha512:} hex_length=128 ;;
  *) hex='' hex_length=0 ;;
esac
case $hex in '' | *[!0-9a-f]*) hex_length=-1 ;; esac
if [ "${#hex}" -ne "$hex_length" ]; then
  show "$digest"
  usage_error "-digest \"$shown\" is not a sha256 or sha512 digest"
fi
if [ "$media_type" != "$media_type_expected" ]; then
  show "$media_type"
  usage_error "-stdin-media-type \"$shown\" is not supported (expected $media_type_expected)"
fi
case $name in *[[:space:]]*) usage_error '-name is not an image reference' ;; esac
[ ${#name} -le 4096 ] || usage_error '-name is not an image reference'
show "$name"
shown_name=$shown

# The wait for signetd, in ms: SIGNET_VERIFIER_TIMEOUT like 8s, 1.5s or 500ms (as the Node verifier reads it).
timeout=${SIGNET_VERIFIER_TIMEOUT:-8s}
case $timeout in
  *ms) number=${timeout%ms} unit=1 ;;
  *s) number=${timeout%s} unit=1000 ;;
  *) number='' unit=0 ;;
esac
case $number in '' | .* | *. | *.*.* | *[!0-9.]*) number='' ;; esac
whole=${number%%.*}
fraction=${number#"$whole"}
fraction=${fraction#.}000
fraction=${fraction%"${fraction#???}"}
whole=${whole#"${whole%%[!0]*}"}
if [ -z "$number" ] || [ ${#whole} -gt 6 ]; then
  show "$timeout"
  usage_error "SIGNET_VERIFIER_TIMEOUT \"$shown\" is not a duration like 8s or 500ms"
fi
timeout_ms=$(((${whole:-0} * 1000 + 1$fraction - 1000) * unit / 1000))
if [ "$timeout_ms" -le 0 ] || [ "$timeout_ms" -gt 600000 ]; then
  usage_error "SIGNET_VERIFIER_TIMEOUT \"$timeout\" is out of range"
fi
milliseconds=$((timeout_ms % 1000))
case ${#milliseconds} in 1) milliseconds=00$milliseconds ;; 2) milliseconds=0$milliseconds ;; esac

# One request. -q: no ~/.curlrc; --noproxy: never a proxy; Expect: off (no 1 s wait on a large descriptor).
# --data-urlencode quotes each value; `descriptor@-` is stdin as containerd wrote it.
answer=$(curl -q -sS --noproxy '*' --unix-socket "$socket" --max-time "$((timeout_ms / 1000)).$milliseconds" \
  -H 'Expect:' -w '\n%{http_code}' \
  --data-urlencode "name=$name" --data-urlencode "digest=$digest" --data-urlencode "stdin-media-type=$media_type" \
  --data-urlencode "timeout-ms=$timeout_ms" --data-urlencode 'descriptor@-' \
  'http://signetd/v1/verify' 2>/dev/null)
status=$?

show "$socket"
shown_socket=$shown
fail_closed() {
  printf 'signet: cannot get a decision from signetd at %s (%s); rejecting %s (fail closed)\n' "$shown_socket" "$1" "$shown_name"
  exit 1
}
if [ "$status" -ne 0 ]; then
  case $status in
    7) if [ -S "$socket" ]; then fail_closed 'connection refused'; else fail_closed 'no such socket: is signetd running?'; fi ;;
    28) fail_closed "no answer within $timeout_ms ms of the verifier's start" ;;
    52) fail_closed 'it closed the connection without an answer' ;;
    55 | 56) fail_closed 'the connection failed during the exchange' ;;
    126 | 127) fail_closed 'curl is not installed: signet-verifier needs it' ;;
    *) fail_closed "curl exit status $status" ;;
  esac
fi

code=${answer##*
}
body=${answer%
*}
[ "$body" != "$answer" ] || body=''
case $body in
  *["$controls"]*) body="(signetd's answer held control characters; not shown)" ;;
esac
[ ${#body} -le 8192 ] || body="(signetd's answer is ${#body} bytes long; not shown)"

case $code in
  200)
    printf '%s\n' "${body:-signet: accepted}"
    exit 0
    ;;
  403)
    printf '%s\n' "${body:-signet: rejected}"
    exit 1
    ;;
  400 | 413) usage_error "$body" ;;
  503)
    printf '%s\n' "$body"
    exit 1
    ;;
  *) fail_closed "it answered HTTP $code: $body" ;;
esac
