#!/bin/sh
# shop worker: exported by procrun from the Procfile; supervisord passes the instance number.
cd /srv/shop || exit 1
export DATABASE_URL='postgres://u:p@db/shop?x=1'
export QUOTE='say "hi" \ 50%'
export PRICE='$5'
export PATH=/usr/bin:/bin
export PORT=$((5100 + $1 - 1))
export PS="worker.$1" DYNO="worker.$1" HONCHO_PROCESS_NAME="worker.$1"
exec /bin/sh -c 'echo "100% $HOME" && exec celery -A tasks worker'
