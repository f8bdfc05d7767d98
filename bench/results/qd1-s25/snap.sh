#!/bin/bash
# snap.sh NAME: copy the worktree's built JS + addon to /tmp/q25/t-NAME (loadable by require(dir))
D=/tmp/q25/t-$1; rm -rf $D; mkdir -p $D/build/Release
cd /work/wt/qd1r25 && cp -r dist package.json $D/ && cp build/Release/ringmaster.node $D/build/Release/ && ln -s /work/wt/qd1r25/node_modules $D/node_modules
echo $D
