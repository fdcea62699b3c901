# bash completion for signet (generated from its command definitions: signet completion bash)
_signet() {
  local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
  local path="" w i
  # The deepest known command among the words typed so far.
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${path:+$path }${COMP_WORDS[i]}"
    case "$w" in
      "status"|"sign"|"verify"|"audit"|"policy"|"policy check"|"policy explain"|"policy test"|"policy schema"|"policy push"|"policy status"|"keys"|"keys generate"|"keys list"|"keys export"|"keys import"|"node"|"node audit"|"doctor"|"install"|"uninstall"|"completion"|"man"|"version") path="$w" ;;
    esac
  done
  case "$path" in
    "")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "status sign verify audit policy keys node doctor install uninstall completion man version help --version --help" -- "$cur")) ;;
    "status")
      case "$prev" in
        --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
        --wait) COMPREPLY=(); return ;;
      esac
      COMPREPLY=($(compgen -W "--socket --output --wait --ready --help" -- "$cur")) ;;
    "sign")
      case "$prev" in
        --key) COMPREPLY=(); return ;;
        --format) COMPREPLY=($(compgen -W "cosign sigstore-bundle" -- "$cur")); return ;;
        --annotation) COMPREPLY=(); return ;;
        --scan-report) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --max-severity) COMPREPLY=($(compgen -W "none low medium high critical" -- "$cur")); return ;;
        --ignore) COMPREPLY=(); return ;;
        --ignore-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --insecure-registry) COMPREPLY=(); return ;;
        --docker-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --hosts-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--key --format --annotation --scan-report --max-severity --ignore --ignore-file --attest-scan --insecure-registry --docker-config --hosts-dir --pkcs11-module --output --help" -- "$cur")) ;;
    "verify")
      case "$prev" in
        --policy-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --insecure-registry) COMPREPLY=(); return ;;
        --docker-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --hosts-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--policy-dir --insecure-registry --docker-config --hosts-dir --pkcs11-module --output --help" -- "$cur")) ;;
    "audit")
      case "$prev" in
        --policy-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --insecure-registry) COMPREPLY=(); return ;;
        --docker-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --hosts-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --max-tags) COMPREPLY=(); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--policy-dir --insecure-registry --docker-config --hosts-dir --pkcs11-module --max-tags --output --help" -- "$cur")) ;;
    "policy")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "check explain test schema push status help --help" -- "$cur")) ;;
    "policy check")
      case "$prev" in
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--output --help" -- "$cur")) ;;
    "policy explain")
      case "$prev" in
        --policy-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--policy-dir --output --help" -- "$cur")) ;;
    "policy test")
      case "$prev" in
        --policy-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --insecure-registry) COMPREPLY=(); return ;;
        --docker-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --hosts-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--policy-dir --insecure-registry --docker-config --hosts-dir --pkcs11-module --output --help" -- "$cur")) ;;
    "policy schema")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
    "policy push")
      case "$prev" in
        --key) COMPREPLY=(); return ;;
        --insecure-registry) COMPREPLY=(); return ;;
        --docker-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --hosts-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--key --insecure-registry --docker-config --hosts-dir --pkcs11-module --output --help" -- "$cur")) ;;
    "policy status")
      case "$prev" in
        --insecure-registry) COMPREPLY=(); return ;;
        --docker-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --hosts-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--insecure-registry --docker-config --hosts-dir --output --help" -- "$cur")) ;;
    "keys")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "generate list export import help --help" -- "$cur")) ;;
    "keys generate")
      case "$prev" in
        --key) COMPREPLY=(); return ;;
        --algorithm) COMPREPLY=($(compgen -W "ec-p256 ec-p384 rsa-3072 ed25519" -- "$cur")); return ;;
        --label) COMPREPLY=(); return ;;
        --id) COMPREPLY=(); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--key --algorithm --label --id --pkcs11-module --help" -- "$cur")) ;;
    "keys list")
      case "$prev" in
        --key) COMPREPLY=(); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--key --output --pkcs11-module --help" -- "$cur")) ;;
    "keys export")
      case "$prev" in
        --key) COMPREPLY=(); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--key --pkcs11-module --help" -- "$cur")) ;;
    "keys import")
      case "$prev" in
        --key) COMPREPLY=(); return ;;
        --file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --label) COMPREPLY=(); return ;;
        --id) COMPREPLY=(); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--key --file --label --id --pkcs11-module --help" -- "$cur")) ;;
    "node")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "audit help --help" -- "$cur")) ;;
    "node audit")
      case "$prev" in
        --containerd) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --namespace) COMPREPLY=(); return ;;
        --policy-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --insecure-registry) COMPREPLY=(); return ;;
        --docker-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --hosts-dir) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --pkcs11-module) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--containerd --namespace --policy-dir --insecure-registry --docker-config --hosts-dir --pkcs11-module --output --help" -- "$cur")) ;;
    "doctor")
      case "$prev" in
        --containerd-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --containerd) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --probe) COMPREPLY=(); return ;;
        --signetd-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--containerd-config --containerd --socket --probe --signetd-config --output --help" -- "$cur")) ;;
    "install")
      case "$prev" in
        --prefix) COMPREPLY=($(compgen -d -- "$cur")); return ;;
        --containerd-config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--prefix --containerd-config --help" -- "$cur")) ;;
    "uninstall")
      case "$prev" in
        --prefix) COMPREPLY=($(compgen -d -- "$cur")); return ;;
      esac
      COMPREPLY=($(compgen -W "--prefix --help" -- "$cur")) ;;
    "completion")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "bash --help" -- "$cur")) ;;
    "man")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
    "version")
      case "$prev" in
      esac
      COMPREPLY=($(compgen -W "--help" -- "$cur")) ;;
  esac
}
complete -F _signet signet
