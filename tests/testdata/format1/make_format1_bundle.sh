#!/bin/sh
# Writes format1_bundle/: a tiny bundle written by the trainer of commit
# 937d03d (before colour preprocessing), trained on the gray/colour/RGBA
# pictures of make_pictures.py. tests/server/colour_test.cc checks that
# today's code fits those pictures to exactly the inputs that trainer used
# and serves the bundle. Needs that commit's trainer:
#   sh make_format1_bundle.sh /path/to/old/build/trainer/embedsearch-trainer
set -e
trainer=$1
rm -rf pictures format1_bundle work
/usr/bin/python3 make_pictures.py pictures
"$trainer" --data=pictures --out=format1_bundle --work_dir=work --conv=4 \
  --hidden=8 --dim=4 --epochs=1 --classes_per_batch=2 --images_per_class=2 \
  --index_spec=Flat --seed=3 --threads=1 --quiet
rm -rf work
