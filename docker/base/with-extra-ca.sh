#!/bin/sh
# Run a build step that downloads over HTTPS (pip, the jars) trusting one more CA bundle when the
# build was given one: `docker build --secret id=extra_ca,src=/path/to/ca.pem ...` (a corporate or
# proxy CA). The secret is mounted at /run/secrets/extra_ca for that step only; the combined
# bundle is deleted afterwards, so nothing of it stays in the image. Without the secret the step
# runs unchanged.
set -eu
extra=/run/secrets/extra_ca
if [ -s "$extra" ]; then
    bundle=$(mktemp)
    # The image's own trust store first, then the extra CA(s).
    cat /etc/ssl/certs/ca-certificates.crt "$extra" > "$bundle"
    trap 'rm -f "$bundle"' EXIT
    export PIP_CERT="$bundle" SSL_CERT_FILE="$bundle" REQUESTS_CA_BUNDLE="$bundle"
fi
"$@"
