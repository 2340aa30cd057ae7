#!/bin/sh
# The invoice-intake agent's job, as a shell script: summarise every invoice in
# the inbox into the outbox. Then it tries what the policy does not grant, to
# show each attempt refused by the sandbox rather than by the script's manners.
set -u
total=0
: > outbox/summary.txt
for invoice in inbox/*.txt; do
  vendor=$(sed -n 's/^vendor: //p' "$invoice")
  amount=$(sed -n 's/^amount: //p' "$invoice")
  total=$((total + amount))
  echo "$(basename "$invoice"): $vendor, $amount EUR" >> outbox/summary.txt
done
echo "total: $total EUR" >> outbox/summary.txt
echo "== wrote outbox/summary.txt"
cat outbox/summary.txt

echo "== what the policy does not grant"
try() {
  label=$1; shift
  if "$@" >/dev/null 2>&1; then echo "ALLOWED  $label"; else echo "refused  $label"; fi
}
try "read inbox/private/bank-details.txt" cat inbox/private/bank-details.txt
try "write into the read-only inbox"      sh -c 'echo x > inbox/forged.txt'
try "read /etc/shadow"                    cat /etc/shadow
try "list the host's home folders"        ls /root /home
try "see the host's processes"            sh -c 'for p in /proc/[0-9]*; do [ "${p#/proc/}" -gt 100 ] && exit 0; done; exit 1'
try "look up example.com (DNS)"           getent ahosts example.com
exit 0
