// The trainer's per-epoch metrics in the Prometheus text format, for
// node_exporter's textfile collector: the trainer writes
// <work_dir>/trainer.prom after every epoch (atomically, next to
// metrics.jsonl), so pointing --collector.textfile.directory at the work
// directory (or symlinking the file into it) graphs a running training.
// The same values as metrics.jsonl's last line; docs/training.md lists them.
#ifndef EMBEDSEARCH_TRAINER_EPOCH_TEXTFILE_H_
#define EMBEDSEARCH_TRAINER_EPOCH_TEXTFILE_H_

#include <string>
#include <vector>

#include "trainer/trainer.h"

namespace embedsearch {

// Gauges of the last epoch of `history` (loss, learning rate, speed) and of
// its last evaluated epoch (precision/recall/mAP@R); empty history: "".
std::string EpochMetricsTextfile(const std::vector<EpochRecord>& history);

}  // namespace embedsearch

#endif  // EMBEDSEARCH_TRAINER_EPOCH_TEXTFILE_H_
