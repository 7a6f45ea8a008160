#!/bin/sh
# conf/install-conf.sh FILE DIR — meson install's step for the config file: puts FILE in
# $DESTDIR/DIR as anvil.conf unless one is there already, so an operator's settings (tokens,
# host) survive installing a new version; the new file then goes next to it as
# anvil.conf.dist, to compare.
set -eu
dir="${DESTDIR:-}$2"
mkdir -p "$dir"
if [ -e "$dir/anvil.conf" ]; then
    install -m 644 "$1" "$dir/anvil.conf.dist"
    echo "Keeping $dir/anvil.conf; the new version's is $dir/anvil.conf.dist"
else
    install -m 644 "$1" "$dir/anvil.conf"
    echo "Installing $dir/anvil.conf"
fi
