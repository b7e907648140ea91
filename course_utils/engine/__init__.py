"""The shared engine of attribution, features and metrics, one idea per module.

- :mod:`~course_utils.engine.checks`: validation of options (integers, numbers, choices,
  indices).
- :mod:`~course_utils.engine.images`: the model's image input and a batch of images, in the
  model's input space (attribution, metrics) or in pixel space (the feature tools).
- :mod:`~course_utils.engine.inputs`: images, targets and batch size validated once
  (:func:`~course_utils.engine.inputs.prepare` -> :class:`~course_utils.engine.inputs.Job`).
- :mod:`~course_utils.engine.scoring`: the model's head, logits and the explained score; a
  layer read without its softmax (:func:`~course_utils.engine.scoring.read_linear`).
- :mod:`~course_utils.engine.batching`: rows per compiled call, chunks, the loops over them.
- :mod:`~course_utils.engine.replicas`: one chunk per replica of a ``tf.distribute.Strategy``.
- :mod:`~course_utils.engine.spaces`: pixel space, model space and feature-map space: the
  affine form of a preprocessing, the one blur.
- :mod:`~course_utils.engine.kernels`: the compile policy, the one compiled-function cache,
  the override point of ReLU's backward pass.
- :mod:`~course_utils.engine.gradients`: the gradient kernels.
- :mod:`~course_utils.engine.taps`: the layer a method reads, the layer-tap helper, a forward
  pass that stops at the last layer asked for, the value before a ReLU.

Lower modules never import higher ones: ``checks``, ``replicas`` <- ``batching``,
``kernels`` <- ``scoring`` <- ``inputs``, ``gradients``; ``images`` <- ``spaces``, ``inputs``;
nothing here imports ``course_utils.attribution`` (``tests/test_import_graph.py`` checks the
package has no cycle).
"""
