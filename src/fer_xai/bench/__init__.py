"""The explainer bench: is the study's verdict the networks' or the explanation method's?

Per explanation method (and, on the synthetic set, per expression) it measures

- planted truth (:mod:`.planted`): Otsu(total heatmap) against the AU regions the generator
  changed, and the relevance mass inside them against their area share;
- a causal check (:mod:`.causal`): the drop of the explained class's probability when the
  method's top region is replaced by the subject's neutral face, next to the drops for the
  planted AU region and for a random region of the same area;
- deletion and insertion curves (:mod:`.curves`), with a random-order baseline;
- sanity under cascading randomisation of the model's layers (:mod:`.sanity`, Adebayo 2018);
- chance levels of the paper's metric (:mod:`.chance`): random superpixel weights, the mean
  heatmap over all expressions, and expression specificity;
- between methods (:mod:`.agreement`): Kendall's tau of the networks' ranking, agreement of the
  best and worst networks, and cophenetic correlation of the dendrograms with LIME's.

The modules are NumPy functions on maps, masks and a ``predict(batch) -> probabilities``
callable; :mod:`.run` wires them to the pipeline's folders (``fer-xai bench``).
"""
