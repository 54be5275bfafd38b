#include "trainer/epoch_textfile.h"

#include <utility>

#include "prometheus/metric_family.h"
#include "prometheus/text_serializer.h"

namespace embedsearch {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help,
                               double value) {
  prometheus::MetricFamily family;
  family.name = std::move(name);
  family.help = std::move(help);
  family.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric metric;
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
  return family;
}

}  // namespace

std::string EpochMetricsTextfile(const std::vector<EpochRecord>& history) {
  if (history.empty()) return "";
  const EpochRecord& last = history.back();
  std::vector<prometheus::MetricFamily> f;
  f.push_back(Gauge("embedsearch_trainer_epoch", "Last finished epoch (1-based).",
                    last.epoch));
  f.push_back(Gauge("embedsearch_trainer_steps", "Training steps since the start of the run.",
                    static_cast<double>(last.global_step)));
  f.push_back(Gauge("embedsearch_trainer_loss", "Mean training loss of the last epoch.",
                    last.loss));
  f.push_back(Gauge("embedsearch_trainer_learning_rate",
                    "Learning rate of the last epoch's last step.", last.lr));
  f.push_back(Gauge("embedsearch_trainer_epoch_duration_seconds",
                    "Wall time of the last epoch's training steps.", last.seconds));
  f.push_back(Gauge("embedsearch_trainer_images_per_second",
                    "Training speed of the last epoch.", last.images_per_second));
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    if (!it->evaluated) continue;
    const RetrievalMetrics& m = it->metrics;
    f.push_back(Gauge("embedsearch_trainer_eval_epoch",
                      "Epoch of the last retrieval evaluation.", it->epoch));
    f.push_back(Gauge("embedsearch_trainer_eval_precision_at_1",
                      "Precision@1 of the last evaluation (0..1).", m.precision_at_1));
    f.push_back(Gauge("embedsearch_trainer_eval_recall_at_5",
                      "Recall@5 of the last evaluation (0..1).", m.recall_at_5));
    f.push_back(Gauge("embedsearch_trainer_eval_recall_at_10",
                      "Recall@10 of the last evaluation (0..1).", m.recall_at_10));
    f.push_back(Gauge("embedsearch_trainer_eval_map_at_r",
                      "mAP@R of the last evaluation (0..1).", m.map_at_r));
    break;
  }
  return prometheus::TextSerializer().Serialize(f);
}

}  // namespace embedsearch
