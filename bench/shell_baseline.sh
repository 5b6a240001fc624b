#!/bin/sh
# What people do today, take two: a shell entrypoint looping over the AWS CLI
# (the benchmark's second baseline). Same environment as envseal; one CLI
# process per value, sequentially; then exec "$@".
#
# Usage: AWS_CLI=/path/to/aws shell_baseline.sh CMD [ARGS...]
set -eu
(set -o pipefail 2>/dev/null) && set -o pipefail
AWS=${AWS_CLI:-aws}

s3_document() {
    # s3://bucket/key holding base64(KMS ciphertext) of a JSON document
    "$AWS" s3 cp "$1" - | base64 -d | "$AWS" kms decrypt --ciphertext-blob fileb:///dev/stdin \
        --query Plaintext --output text | base64 -d
}

for source in $(printf '%s' "${ENVSEAL_FROM:-}" | tr ',' ' '); do
    case "$source" in
    ssm:*)
        path=${source#ssm:}
        out=$("$AWS" ssm get-parameters-by-path --path "$path" --recursive \
            --with-decryption --query 'Parameters[].[Name,Value]' --output text)
        while IFS="$(printf '\t')" read -r name value; do
            var=$(printf '%s' "${name#"$path"}" | tr 'a-z/-' 'A-Z__')
            export "$var=$value"
        done <<EOT
$out
EOT
        ;;
    s3://*)
        doc=$(s3_document "$source")
        export ENVSEAL_BENCH_DOC="$doc"
        ;;
    esac
done

for var in $(env | grep -v '^ENVSEAL_' |
    sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=\(ssm:\|sm:\|kms:\|s3:\/\/\).*/\1/p'); do
    eval "ref=\$$var"
    case "$ref" in
    ssm:*) value=$("$AWS" ssm get-parameter --name "${ref#ssm:}" --with-decryption \
        --query Parameter.Value --output text) ;;
    sm:*) value=$("$AWS" secretsmanager get-secret-value --secret-id "${ref#sm:}" \
        --query SecretString --output text) ;;
    kms:*) value=$(printf '%s' "${ref#kms:}" | base64 -d | "$AWS" kms decrypt \
        --ciphertext-blob fileb:///dev/stdin --query Plaintext --output text | base64 -d) ;;
    s3://*) value=$(s3_document "$ref") ;;
    esac
    export "$var=$value"
done
unset ENVSEAL_FROM
exec "$@"
