"""Operations: the voxhook command, serve (every process in one), the embedded Redis."""
