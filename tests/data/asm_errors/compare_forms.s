	cmpi 0, 4, 128
	cmpli 1, 4
	cmp 0, 3, 4, 5, 6
	cmpl 1
	cmpwi r3
	cmpi 4, 128
