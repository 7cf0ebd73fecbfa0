"""Co-writing with a trained generator: a recorded, undoable :class:`~gan_writer.cowrite.session.Session`,
its terminal loop (``gan-writer cowrite``) and a local web studio (``gan-writer studio``)."""
