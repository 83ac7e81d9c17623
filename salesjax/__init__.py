"""salesjax: monthly revenue forecasting with a functional JAX LSTM."""
