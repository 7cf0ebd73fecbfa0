"""Analysis of runs: quality–diversity curves under temperature sweeps and the MLE-vs-GAN
verdict (:mod:`~gan_writer.analysis.quality_diversity`, after Caccia et al. 2020,
"Language GANs Falling Short"), matplotlib figures (:mod:`~gan_writer.analysis.plots`)
and TensorBoard event files (:mod:`~gan_writer.analysis.events`). Used by
``gan-writer compare`` and the notebooks in ``notebooks/``.
"""
