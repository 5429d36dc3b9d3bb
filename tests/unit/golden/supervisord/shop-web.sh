#!/bin/sh
# shop web: exported by procrun from the Procfile; supervisord passes the instance number.
cd /srv/shop || exit 1
export DATABASE_URL='postgres://u:p@db/shop?x=1'
export QUOTE='say "hi" \ 50%'
export PRICE='$5'
export PATH=/usr/bin:/bin
export PORT=$((5000 + $1 - 1))
export PS="web.$1" DYNO="web.$1" HONCHO_PROCESS_NAME="web.$1"
exec /bin/sh -c 'gunicorn app:app -b 0.0.0.0:$PORT --log-level '"'"'info'"'"''
