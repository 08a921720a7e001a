"""Training ALIGN: the recipe, the model, the loss, the schedule, the data stream, checkpoints, export."""
