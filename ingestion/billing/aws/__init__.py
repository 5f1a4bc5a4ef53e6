"""AWS Cost and Usage Report (legacy CUR and CUR 2.0 / Data Exports): Bedrock lines."""
