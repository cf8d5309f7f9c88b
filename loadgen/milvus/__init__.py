"""milvus"""
